"""Metrics: retrieval recall@k and MRR, nDCG@10 / MRR@10 / recall@100 as trec_eval computes them; EM/F1 with
KorQuAD 1.0 rules."""

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


# ----------------------------------------------------------- ranked-list metrics over a relevant set (TREC)
def ndcg_at(relevant_ranks: Sequence[int], n_relevant: int, k: int) -> float:
    """nDCG@k with binary relevance: `relevant_ranks` are the 1-based ranks of the relevant passages retrieved,
    `n_relevant` the size of the question's relevant set (the ideal ranking puts all of them first)."""
    import math
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in relevant_ranks if r <= k)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


def reciprocal_rank_at(relevant_ranks: Sequence[int], k: int) -> float:
    first = min(relevant_ranks, default=None)
    return 1.0 / first if first is not None and first <= k else 0.0


def set_recall_at(relevant_ranks: Sequence[int], n_relevant: int, k: int) -> float:
    """The share of the relevant set retrieved in the top k."""
    return sum(1 for r in relevant_ranks if r <= k) / n_relevant if n_relevant > 0 else 0.0


def trec_metrics(judged: Sequence[tuple[Sequence[int], int]]) -> dict[str, float]:
    """ndcg@10, mrr@10 and recall@100 averaged as trec_eval and ranx average them: over the questions that have
    a relevant passage. `judged`: (relevant ranks, size of the relevant set) per question; `questions` counts
    those averaged."""
    scored = [(ranks, n) for ranks, n in judged if n > 0]
    if not scored:
        return {"questions": 0, "ndcg@10": 0.0, "mrr@10": 0.0, "recall@100": 0.0}
    m = len(scored)
    return {"questions": m,
            "ndcg@10": sum(ndcg_at(r, n, 10) for r, n in scored) / m,
            "mrr@10": sum(reciprocal_rank_at(r, 10) for r, _ in scored) / m,
            "recall@100": sum(set_recall_at(r, n, 100) for r, n in scored) / m}


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
