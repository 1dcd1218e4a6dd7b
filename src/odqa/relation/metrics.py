"""KLUE-RE metrics, computed exactly as KLUE's reference code does (numpy only).

- micro-F1 over the relation labels, `no_relation` (index 0) excluded: KLUE's
  ``klue_re_micro_f1`` = ``sklearn.metrics.f1_score(labels, preds, average="micro",
  labels=[1..29]) * 100``. A prediction of no_relation for a relation is a false
  negative; a relation predicted for a no_relation example is a false positive.
- AUPRC: KLUE's ``klue_re_auprc``: for each of the 30 labels one-vs-rest,
  ``precision, recall, _ = precision_recall_curve(y == c, probs[:, c])`` and
  ``auc(recall, precision)`` (trapezoids, not sklearn's step-wise
  ``average_precision_score``), averaged over the 30 labels, * 100.
  A label without positives follows scikit-learn >= 1.1: recall is taken as 1
  everywhere, so its curve has area 0.5 (every label occurs in KLUE's dev set).

Tests check both against scikit-learn on random predictions.
"""

from __future__ import annotations

import numpy as np


def micro_f1(gold: np.ndarray, pred: np.ndarray, negative: int = 0) -> float:
    """Micro-F1 (in %) over all labels except `negative`."""
    gold, pred = np.asarray(gold), np.asarray(pred)
    tp = float(np.sum((pred == gold) & (gold != negative)))
    predicted = float(np.sum(pred != negative))
    actual = float(np.sum(gold != negative))
    if tp == 0:
        return 0.0
    p, r = tp / predicted, tp / actual
    return 100.0 * 2 * p * r / (p + r)


def _pr_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """precision and recall as sklearn.metrics.precision_recall_curve (drop_intermediate=False)."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s, t = score[order], y[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]   # last index of each distinct score
    tps = np.cumsum(t)[last]
    fps = 1 + last - tps
    ps = tps + fps
    precision = np.divide(tps, ps, out=np.zeros_like(tps), where=ps != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def _auc(x: np.ndarray, y: np.ndarray) -> float:
    """sklearn.metrics.auc: trapezoids over a monotonic x (here recall, decreasing)."""
    area = float(np.trapezoid(y, x)) if hasattr(np, "trapezoid") else float(np.trapz(y, x))
    return -area if np.all(np.diff(x) <= 0) else area


def auprc(gold: np.ndarray, probs: np.ndarray) -> float:
    """Mean over labels of the one-vs-rest area under the precision-recall curve (in %)."""
    gold, probs = np.asarray(gold), np.asarray(probs, dtype=np.float64)
    scores = [_auc(*_pr_curve(gold == c, probs[:, c])[::-1]) for c in range(probs.shape[1])]
    return 100.0 * float(np.mean(scores))


def re_metrics(gold: np.ndarray, probs: np.ndarray, pred: np.ndarray | None = None) -> dict[str, float]:
    """micro_f1 and auprc as KLUE (in %), plus accuracy (in %) over all labels.

    `pred`: the predicted labels when they are not the argmax of `probs` (hierarchical decoding)."""
    gold = np.asarray(gold)
    pred = np.asarray(probs).argmax(axis=1) if pred is None else np.asarray(pred)
    return {"micro_f1": micro_f1(gold, pred), "auprc": auprc(gold, probs),
            "accuracy": 100.0 * float(np.mean(pred == gold))}


def per_label_f1(pred: np.ndarray, gold: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """F1 (in %), support and number of predictions of each label."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    out = {}
    for i, lab in enumerate(labels):
        tp = int(np.sum((pred == i) & (gold == i)))
        n_pred, n_gold = int(np.sum(pred == i)), int(np.sum(gold == i))
        out[lab] = {"f1": round(200.0 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0, 2), "support": n_gold,
                    "predicted": n_pred}
    return out
