"""How far an answer's probability can be trusted: calibration error, ranking quality, selective accuracy,
and the temperature that calibrates a reader.

`probs[i]` is the probability given to question i's answer and `correct[i]` whether that answer was right
(exact match). Pure numpy/scipy; the reader and the evaluation call these.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

COVERAGES = (0.25, 0.5, 0.75, 1.0)


def _arrays(probs: Sequence[float], correct: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float)
    c = np.asarray(correct, dtype=float)
    if p.shape != c.shape or p.ndim != 1:
        raise ValueError(f"probs and correct must be two lists of one length, got {p.shape} and {c.shape}")
    return p, c


def expected_calibration_error(probs: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE: the share-weighted gap between mean probability and accuracy over `bins` equal-width bins of [0, 1]."""
    p, c = _arrays(probs, correct)
    if not len(p):
        return 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - c[m].mean())
    return float(total)


def auroc(probs: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `probs` separating right answers from wrong ones (None if only one kind)."""
    p, c = _arrays(probs, correct)
    if c.min(initial=1) == c.max(initial=0):
        return None
    from scipy.stats import rankdata
    ranks = rankdata(p)                     # ties get their mean rank: the Mann-Whitney statistic
    pos = c == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def accuracy_at_coverage(probs: Sequence[float], correct: Sequence[bool],
                         coverages: Sequence[float] = COVERAGES) -> dict[str, float]:
    """Accuracy (x100) of the most probable `coverage` share of the answers, for each coverage."""
    p, c = _arrays(probs, correct)
    order = np.argsort(-p, kind="stable")
    out = {}
    for cov in coverages:
        n = max(1, int(round(cov * len(p)))) if len(p) else 0
        out[f"{int(round(cov * 100))}"] = round(float(c[order[:n]].mean() * 100), 2) if n else 0.0
    return out


def calibration_report(probs: Sequence[float], correct: Sequence[bool]) -> dict:
    """ECE, AUROC and EM at 25/50/75/100 % coverage, as `odqa evaluate` reports them."""
    p, _ = _arrays(probs, correct)
    a = auroc(probs, correct)
    return {"ece": round(expected_calibration_error(probs, correct), 4),
            "auroc": None if a is None else round(a, 4),
            "mean_probability": round(float(p.mean()), 4) if len(p) else 0.0,
            "em_at_coverage": accuracy_at_coverage(probs, correct)}


def tempered(probs: Sequence[float], temperature: float) -> np.ndarray:
    """Probabilities p renormalised as p^(1/T): temperature scaling of the scores they came from (order kept)."""
    logp = np.log(np.clip(np.asarray(probs, dtype=float), 1e-300, None)) / temperature
    p = np.exp(logp - logp.max())
    return p / p.sum()


def binary_nll(probs: Sequence[float], correct: Sequence[bool]) -> float:
    p, c = _arrays(probs, correct)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(c * np.log(p) + (1 - c) * np.log(1 - p)).mean())


def fit_temperature(top_probability: Callable[[float], Sequence[float]], correct: Sequence[bool],
                    bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature T minimising the log loss of the answers' probabilities against their correctness.

    `top_probability(T)` gives each question's answer probability when span scores are divided by T
    (the caller re-runs its post-processing; answers do not change with T, their probabilities do)."""
    from scipy.optimize import minimize_scalar
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    grid = np.linspace(lo, hi, 25)
    losses = [binary_nll(top_probability(float(np.exp(g))), correct) for g in grid]
    i = int(np.argmin(losses))
    a, b = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
    if a == b:
        return float(np.exp(grid[i]))
    res = minimize_scalar(lambda g: binary_nll(top_probability(float(np.exp(g))), correct),
                          bounds=(a, b), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))
