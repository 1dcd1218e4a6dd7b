"""Hybrid retrieval: fuse sparse and dense top-k lists.

`minmax`: each list's scores are min-max normalised over its own top-`depth`; a passage
missing from one list takes that list's minimum (0 after normalisation); the fused
score is `alpha * dense + (1 - alpha) * sparse`.
`zscore`: the same weighted sum over scores standardised per list (minus the list's mean,
over its standard deviation); a missing passage takes the list's lowest standardised score.
Min-max leans on each list's extremes, z-scores on its whole top-`depth`.
`rrf`: reciprocal rank fusion, sum of 1 / (rrf_k + rank) over the lists.
"""

from __future__ import annotations

from typing import Sequence

from odqa.config import HybridConfig
from odqa.errors import OdqaError
from odqa.retrieval.base import Retriever, check_queries
from odqa.retrieval.filters import Filters
from odqa.timing import stage
from odqa.types import Hit

METHODS = ("minmax", "zscore", "rrf")


def _minmax(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    lo, hi = min(h.score for h in hits), max(h.score for h in hits)
    span = hi - lo
    return {h.passage.id: (h.score - lo) / span if span > 0 else 1.0 for h in hits}


def _zscore(hits: list[Hit]) -> dict[str, float]:
    if not hits:
        return {}
    n = len(hits)
    mean = sum(h.score for h in hits) / n
    std = (sum((h.score - mean) ** 2 for h in hits) / n) ** 0.5
    return {h.passage.id: (h.score - mean) / std if std > 0 else 1.0 for h in hits}  # all equal: above the missing


def _weighted(sparse: dict[str, float], dense: dict[str, float], passages, alpha: float) -> dict[str, float]:
    """alpha * dense + (1 - alpha) * sparse; a passage missing from a list takes that list's minimum
    (at most 0, so a list whose scores are all equal still ranks its passages above the missing ones)."""
    s0, d0 = (min(min(x.values(), default=0.0), 0.0) for x in (sparse, dense))
    return {pid: alpha * dense.get(pid, d0) + (1 - alpha) * sparse.get(pid, s0) for pid in passages}


def fuse(sparse: list[Hit], dense: list[Hit], cfg: HybridConfig, k: int) -> list[Hit]:
    passages = {h.passage.id: h.passage for h in sparse + dense}
    if cfg.method in ("minmax", "zscore"):
        norm = _minmax if cfg.method == "minmax" else _zscore
        scores = _weighted(norm(sparse), norm(dense), passages, cfg.alpha)
    elif cfg.method == "rrf":
        scores = dict.fromkeys(passages, 0.0)
        for lst in (sparse, dense):
            for h in lst:
                scores[h.passage.id] += 1.0 / (cfg.rrf_k + h.rank)
    else:
        raise OdqaError(f"unknown fusion method '{cfg.method}' (choose from {', '.join(METHODS)})")
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    return [Hit(passages[pid], sc, r + 1, "hybrid") for r, (pid, sc) in enumerate(ranked)]


class HybridRetriever:
    def __init__(self, sparse: Retriever, dense: Retriever, cfg: HybridConfig):
        if not 0.0 <= cfg.alpha <= 1.0:
            raise OdqaError(f"hybrid alpha must be within [0, 1], got {cfg.alpha}")
        self.sparse, self.dense, self.cfg = sparse, dense, cfg

    def candidates(self, queries: Sequence[str], k: int,
                   filters: Filters | None = None) -> tuple[list[list[Hit]], list[list[Hit]]]:
        """Each side's top-depth hits (both filtered alike when `filters` are given)."""
        queries = check_queries(queries)
        depth = max(k, self.cfg.depth)
        if not filters:
            return self.sparse.search(queries, depth), self.dense.search(queries, depth)
        return self.sparse.search(queries, depth, filters), self.dense.search(queries, depth, filters)

    def search(self, queries: Sequence[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        sp, de = self.candidates(queries, k, filters)
        with stage("fusion"):
            return [fuse(s, d, self.cfg, k) for s, d in zip(sp, de)]
