"""Metrics: retrieval recall@k and MRR (EM/F1 with KorQuAD rules join with the reader)."""

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
