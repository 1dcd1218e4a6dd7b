"""Metrics: retrieval recall@k and MRR; EM/F1 with KorQuAD 1.0 rules."""

from __future__ import annotations

from typing import Sequence

RECALL_KS = (1, 5, 10, 20, 50, 100)


def recall_at_k(ranks: Sequence[int | None], ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """`ranks[i]` is the 1-based rank of the first relevant hit of question i, or None."""
    n = len(ranks)
    if n == 0:
        return {f"recall@{k}": 0.0 for k in ks}
    return {f"recall@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in ks}


def mrr(ranks: Sequence[int | None]) -> float:
    return sum(1.0 / r for r in ranks if r) / len(ranks) if ranks else 0.0


# ----------------------------------------------------------- EM / F1 (KorQuAD 1.0 rules)
def normalize_answer(s: str) -> str:
    """KorQuAD 1.0's official normalisation: quotes and brackets to spaces, lower case,
    ASCII punctuation removed, whitespace collapsed."""
    import re
    import string
    s = re.sub(r"['\"《》<>〈〉()‘’]", " ", s)
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    return " ".join(s.split())


def exact_match(prediction: str, truths: Sequence[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(t) for t in truths)) if truths else 0.0


def _char_f1(prediction: str, truth: str) -> float:
    from collections import Counter
    pred = [c for tok in normalize_answer(prediction).split() for c in tok]
    gold = [c for tok in normalize_answer(truth).split() for c in tok]
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, truths: Sequence[str]) -> float:
    """Character-level F1 (KorQuAD 1.0), best over the gold answers."""
    return max((_char_f1(prediction, t) for t in truths), default=0.0)


def em_f1(predictions: dict[str, str], answers: dict[str, Sequence[str]]) -> dict[str, float]:
    """EM and F1 in percent over the questions of `answers` (a missing prediction scores 0)."""
    if not answers:
        return {"em": 0.0, "f1": 0.0, "count": 0}
    em = sum(exact_match(predictions.get(q, ""), a) for q, a in answers.items())
    f = sum(f1(predictions.get(q, ""), a) for q, a in answers.items())
    n = len(answers)
    return {"em": 100 * em / n, "f1": 100 * f / n, "count": n}
