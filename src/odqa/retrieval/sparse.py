"""BM25 over Korean morphemes, on bm25s (ATIRE, Robertson, Lucene, BM25L, BM25+).

Searches read bm25s's score matrix directly (`odqa.retrieval.csc_scores`: bm25s's arithmetic and
ranking without its per-call overhead). rank-bm25 is kept as a reference backend for comparisons; it
is slow by design.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from odqa.config import BM25Config
from odqa.errors import OdqaError
from odqa.retrieval.base import check_queries
from odqa.retrieval.csc_scores import CscScores
from odqa.retrieval.filters import Filters, MetadataTable, allowed_rows
from odqa.text.analyzers import Analyzer
from odqa.timing import stage
from odqa.types import Hit, Passage

METHODS = {"atire": "atire", "robertson": "robertson", "lucene": "lucene", "bm25l": "bm25l", "bm25+": "bm25+"}
BACKENDS = ("bm25s", "rank-bm25")


def passage_text(p: Passage, include_title: bool) -> str:
    return f"{p.title}\n{p.text}" if include_title and p.title else p.text


class BM25Scorer:
    """Term-level BM25 index over pre-tokenised documents."""

    def __init__(self, cfg: BM25Config, backend: str = "bm25s"):
        if cfg.method not in METHODS:
            raise OdqaError(f"unknown BM25 method '{cfg.method}' (choose from {', '.join(METHODS)})")
        if backend not in BACKENDS:
            raise OdqaError(f"unknown sparse backend '{backend}' (choose from {', '.join(BACKENDS)})")
        self.cfg, self.backend = cfg, backend
        self._model = None
        self._fast: CscScores | None = None
        self._saved: tuple[Path, bool] | None = None    # (folder, mmap) of a loaded scorer's bm25s model
        self.n_docs = 0

    def fit(self, doc_terms) -> "BM25Scorer":
        """Index `doc_terms`: each document's terms, or (bm25s) a `bm25s.tokenization.Tokenized` of
        each document's term ids and their vocabulary (`odqa.index.streaming`)."""
        ids = getattr(doc_terms, "ids", None)
        if ids is not None and self.backend != "bm25s":
            raise OdqaError("the rank-bm25 reference backend indexes terms, not term ids")
        self.n_docs = len(doc_terms if ids is None else ids)
        if self.backend == "bm25s":
            import bm25s
            self._model = bm25s.BM25(method=METHODS[self.cfg.method], k1=self.cfg.k1, b=self.cfg.b,
                                     delta=self.cfg.delta)
            self._model.index(doc_terms, show_progress=False)
            self._fast, self._saved = None, None
        else:
            self._model = _rank_bm25(self.cfg, doc_terms)
        return self

    def top_k(self, query_terms: list[list[str]], k: int,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(doc indices, scores), each of shape (n_queries, k'), k' = min(k, n_docs); `rows` (sorted doc
        indices, a metadata filter): only those are ranked, k' = min(k, len(rows))."""
        k = min(k, self.n_docs if rows is None else len(rows))
        if self.backend == "bm25s":
            return self._csc().top_k(query_terms, k, rows)
        idx = np.zeros((len(query_terms), k), dtype=np.int64)
        sc = np.zeros((len(query_terms), k), dtype=np.float32)
        if k == 0:
            return idx, sc
        for i, q in enumerate(query_terms):
            s = np.asarray(self._model.get_scores(q))
            docs = np.arange(len(s)) if rows is None else rows
            s = s[docs]
            top = np.argpartition(-s, k - 1)[:k]
            top = top[np.argsort(-s[top], kind="stable")]
            idx[i], sc[i] = docs[top], s[top]
        return idx, sc

    def _csc(self) -> "CscScores":
        if self._fast is None:
            self._fast = CscScores.of(self._bm25s())
        return self._fast

    def _bm25s(self):
        """The bm25s model: fitted here, or read from the folder this scorer was loaded from."""
        if self._model is None and self._saved is not None:
            import bm25s
            folder, mmap = self._saved
            self._model = bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False)
        return self._model

    def save(self, folder: Path) -> None:
        if self.backend != "bm25s":
            raise OdqaError("the rank-bm25 reference backend is for comparisons and is not saved")
        self._bm25s().save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, cfg: BM25Config, mmap: bool = True) -> "BM25Scorer":
        """The scorer saved in `folder`; with `mmap` its score arrays are mapped from the files (pages read
        when a query touches them, shared between processes) rather than read into memory. Index files are
        never rewritten in place (a rebuild writes a new folder and swaps it in), so a mapping stays valid.
        Searching reads the score matrix alone (`CscScores.load`, no bm25s import); the bm25s model is
        loaded only if something asks for it (saving it elsewhere)."""
        obj = cls(cfg)
        obj._fast = CscScores.load(folder, mmap)
        obj.n_docs = obj._fast.num_docs
        obj._saved = (Path(folder), mmap)
        return obj


def _rank_bm25(cfg: BM25Config, doc_terms: list[list[str]]):
    try:
        import rank_bm25
    except ImportError:
        raise OdqaError("the reference backend needs rank-bm25: pip install rank-bm25") from None
    if cfg.method == "bm25l":
        return rank_bm25.BM25L(doc_terms, k1=cfg.k1, b=cfg.b, delta=cfg.delta)
    if cfg.method == "bm25+":
        return rank_bm25.BM25Plus(doc_terms, k1=cfg.k1, b=cfg.b, delta=cfg.delta)
    return rank_bm25.BM25Okapi(doc_terms, k1=cfg.k1, b=cfg.b)


class SparseRetriever:
    """Analyzer + BM25 scorer + the passages they index (and their metadata, for filtered searches)."""

    def __init__(self, passages: list[Passage], analyzer: Analyzer, scorer: BM25Scorer,
                 include_title: bool = True, metadata: MetadataTable | None = None):
        self.passages, self.analyzer, self.scorer = passages, analyzer, scorer
        self.include_title = include_title
        self.metadata = metadata if metadata is not None else MetadataTable(passages)

    @classmethod
    def build(cls, passages: list[Passage], analyzer: Analyzer, cfg: BM25Config, include_title: bool = True,
              backend: str = "bm25s", progress: Callable[[int], None] | None = None,
              doc_terms: list[list[str]] | None = None) -> "SparseRetriever":
        if doc_terms is None:
            doc_terms = analyzer.tokenize([passage_text(p, include_title) for p in passages], progress)
        return cls(passages, analyzer, BM25Scorer(cfg, backend).fit(doc_terms), include_title)

    def search(self, queries: Sequence[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        """Top-k passages sharing a term with each query; with `filters`, among the passages they allow."""
        queries = check_queries(queries)
        rows = allowed_rows(self.metadata, filters)
        with stage("query_analysis"):
            terms = self.analyzer.tokenize(queries)
        with stage("sparse_search"):
            idx, scores = self.scorer.top_k(terms, k, rows)
        out = []
        for row_i, row_s in zip(idx, scores):
            out.append([Hit(self.passages[int(i)], float(s), r + 1, "sparse")
                        for r, (i, s) in enumerate(zip(row_i, row_s)) if s > 0])
        return out

    def save(self, folder: Path) -> None:
        self.scorer.save(folder / "bm25")
        (folder / "bm25" / "odqa.json").write_text(json.dumps({"include_title": self.include_title}))

