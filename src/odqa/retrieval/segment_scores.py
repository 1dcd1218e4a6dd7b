"""BM25 top-k over several segments of raw term counts with deleted documents, scored at query time.

An index that was updated holds segments (the build's documents, then each batch added since), each with
its own vocabulary and term counts (`bm25_terms.TermCounts`), and a deletion mask over all of them. The
collection's statistics are those of the documents still there: N, the total length, and each term's
document frequency summed over the segments (each segment's `df` counts its documents not deleted). A
query's scores use them, so they equal what a fresh build of the remaining documents would precompute,
to the bit (`bm25_terms.pair_scores`, summed in the query's term order like `CscScores`).

Positions: documents are numbered across segments in order (segment 0's first); `top_k` returns positions
among the documents not deleted (what a fresh build would number them), ties in that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odqa.config import BM25Config
from odqa.retrieval import bm25_terms as bt
from odqa.retrieval.csc_scores import top_among


@dataclass
class Segment:
    counts: bt.TermCounts
    vocab: dict[str, int]        # term -> its column in `counts`
    df: np.ndarray               # each column's document frequency among this segment's documents not deleted


class SegmentScores:
    """Query-time BM25 over `segments` with `deleted` (bool, one per document across the segments)."""

    def __init__(self, segments: list[Segment], deleted: np.ndarray, cfg: BM25Config):
        self.segments, self.cfg = segments, cfg
        self.offsets = np.cumsum([0] + [s.counts.n_docs for s in segments])
        self.deleted = np.asarray(deleted, dtype=bool)
        if len(self.deleted) != self.offsets[-1]:
            raise ValueError(f"deletion mask of {len(self.deleted)} documents for {self.offsets[-1]} in the segments")
        live = ~self.deleted
        self.n_docs = int(live.sum())
        self.live_position = np.cumsum(live) - 1          # position among the documents kept
        total = sum(int(np.asarray(s.counts.doc_len)[live[a:b]].sum())
                    for s, a, b in zip(segments, self.offsets[:-1], self.offsets[1:]))
        self.avgdl = bt.average_length(total, self.n_docs)
        self._terms: dict[str, tuple] = {}

    def _term(self, term: str):
        """(idf, non-occurrence, [(segment index, column)]) of a term; None when no remaining document has it."""
        if term not in self._terms:
            where = [(i, s.vocab[term]) for i, s in enumerate(self.segments) if term in s.vocab]
            df = sum(int(self.segments[i].df[c]) for i, c in where)
            self._terms[term] = None if not df else (bt.idf(df, self.n_docs, self.cfg),
                                                     bt.nonoccurrence(df, self.n_docs, self.avgdl, self.cfg), where)
            if len(self._terms) > 100_000:
                self._terms.clear()
        return self._terms[term]

    def scores(self, terms: list[str]) -> np.ndarray:
        """Every document's score (deleted ones -inf), across the segments."""
        out = np.zeros(int(self.offsets[-1]), dtype=bt.DTYPE)
        known = []
        for t in terms:
            info = self._term(t)
            if info is None:
                continue
            idf, non, where = info
            known.append(non)
            for i, col in where:
                c = self.segments[i].counts
                a, b = int(c.indptr[col]), int(c.indptr[col + 1])
                docs = np.asarray(c.indices[a:b])
                s = bt.pair_scores(np.asarray(c.tf[a:b]), np.asarray(c.doc_len)[docs], idf, non, self.avgdl, self.cfg)
                out[self.offsets[i] + docs] += s
        if self.cfg.method in bt.NONOCCURRENCE and known:
            out += np.asarray(known, dtype=bt.DTYPE).sum()
        out[self.deleted] = -np.inf
        return out

    def top_k(self, queries: list[list[str]], k: int,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions among the remaining documents, scores), each (n_queries, min(k, remaining)); `rows`
        (sorted positions among the remaining documents, a metadata filter): only those are ranked."""
        k = min(k, self.n_docs if rows is None else len(rows))
        docs = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=bt.DTYPE)
        among = None if rows is None else np.flatnonzero(~self.deleted)[np.asarray(rows, dtype=np.int64)]
        for i, terms in enumerate(queries):
            if k:
                d, scores[i] = top_among(self.scores(terms), k, among)
                docs[i] = self.live_position[d]
        return docs, scores
