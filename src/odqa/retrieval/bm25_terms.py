"""BM25 from raw term counts: the one elementwise function behind precomputed and query-time scores.

bm25s stores each (term, document) pair's final score, computed with the corpus's document count N, average
length and each term's document frequency. Those go stale as soon as a document is added or removed, so an
index that changes keeps the raw counts instead (`TermCounts`: a term-major CSC matrix of term frequencies
plus each document's length) and scores from them:

- `pair_scores` is bm25s's arithmetic for a batch of pairs (its own tf-component and idf functions, the
  same float32 / float64 steps, the same rounding to float32), so a score computed here at query time
  is bm25s's precomputed score to the bit (tests/test_segments.py checks every method).
- `precompute` turns counts into bm25s's score matrix (compacting an updated index), with the same function.
- `term_counts` makes the counts of documents given as term ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from odqa.config import BM25Config

DTYPE = np.float32
NONOCCURRENCE = ("bm25l", "bm25+")      # methods that add a score for query terms a document lacks


def _scorers(method: str):
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer
    return _select_idf_scorer(method), _select_tfc_scorer(method)


def average_length(total: int, n_docs: int) -> np.float64:
    """The mean document length as bm25s computes it (numpy's mean of the lengths: exact sum, one division)."""
    return np.float64(total) / n_docs if n_docs else np.float64(0.0)


def idf(df: int, n_docs: int, cfg: BM25Config) -> np.float32:
    """A term's idf as bm25s stores it (computed in float64, kept as float32; 0 for a term no document has)."""
    return DTYPE(_scorers(cfg.method)[0](int(df), N=int(n_docs))) if df else DTYPE(0.0)


def nonoccurrence(df: int, n_docs: int, avgdl: np.float64, cfg: BM25Config) -> np.float32:
    """bm25l / bm25+: the score of a term in a document without it (bm25s's non-occurrence array entry)."""
    if cfg.method not in NONOCCURRENCE or not df:
        return DTYPE(0.0)
    idf_fn, tfc = _scorers(cfg.method)
    return DTYPE(idf_fn(int(df), N=int(n_docs)) * tfc(tf_array=0, l_d=avgdl, l_avg=avgdl, k1=cfg.k1, b=cfg.b,
                                                      delta=cfg.delta))


def pair_scores(tf: np.ndarray, doc_len: np.ndarray, term_idf, term_nonocc, avgdl: np.float64,
                cfg: BM25Config) -> np.ndarray:
    """BM25 scores (float32) of (term, document) pairs: `tf` float32 frequencies, `doc_len` the documents'
    lengths, `term_idf` / `term_nonocc` float32 (one value, or one per pair)."""
    tfc = _scorers(cfg.method)[1](tf_array=tf, l_d=doc_len, l_avg=avgdl, k1=cfg.k1, b=cfg.b, delta=cfg.delta)
    s = term_idf * tfc
    if cfg.method in NONOCCURRENCE:
        s = s - term_nonocc
    return np.asarray(s).astype(DTYPE)


@dataclass
class TermCounts:
    """Raw counts of a set of documents, term-major: term t's documents are `indices[indptr[t]:indptr[t+1]]`
    (ascending), their frequencies the same slice of `tf`; `doc_len[d]` is document d's number of terms."""
    tf: np.ndarray          # float32
    indices: np.ndarray     # int32
    indptr: np.ndarray      # int64, n_terms + 1
    doc_len: np.ndarray     # int64, n_docs

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    def df(self) -> np.ndarray:
        """Each term's document frequency (int64)."""
        return np.diff(np.asarray(self.indptr)).astype(np.int64)


def term_counts(flat: np.ndarray, ends: np.ndarray, n_terms: int, block_docs: int = 50_000) -> TermCounts:
    """The counts of documents given as one flat array of term ids (`flat`) and where each document ends
    (`ends`, starting with 0). Counted a block of documents at a time, then ordered by term (a stable
    sort, so each term's documents stay ascending): the pairs come out in bm25s's CSC order."""
    flat = np.asarray(flat)
    ends = np.asarray(ends, dtype=np.int64)
    n_docs = len(ends) - 1
    terms, docs, tfs = [], [], []
    for start in range(0, n_docs, block_docs):
        stop = min(start + block_docs, n_docs)
        ids = flat[ends[start]:ends[stop]].astype(np.int64)
        lens = np.diff(ends[start:stop + 1])
        local = np.repeat(np.arange(stop - start, dtype=np.int64), lens)
        key, count = np.unique(local * n_terms + ids, return_counts=True)     # per document, by term
        terms.append((key % n_terms).astype(np.int32))
        docs.append((key // n_terms + start).astype(np.int32))
        tfs.append(count.astype(DTYPE))
    term = np.concatenate(terms) if terms else np.zeros(0, np.int32)
    order = np.argsort(term, kind="stable")
    indptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(np.bincount(term, minlength=n_terms), out=indptr[1:])
    return TermCounts(np.concatenate(tfs)[order] if tfs else np.zeros(0, DTYPE),
                      np.concatenate(docs)[order] if docs else np.zeros(0, np.int32), indptr,
                      np.diff(ends).astype(np.int64))


def precompute(counts: TermCounts, cfg: BM25Config) -> tuple[np.ndarray, np.ndarray | None]:
    """bm25s's score matrix of `counts` taken as the whole corpus: (`data`, aligned with `counts.indices`,
    and the non-occurrence array for bm25l / bm25+, else None). Every term in `counts` must occur."""
    n = counts.n_docs
    avgdl = average_length(int(np.asarray(counts.doc_len).sum()), n)
    df = counts.df()
    idfs = np.array([idf(d, n, cfg) for d in df], dtype=DTYPE)
    non = (np.array([nonoccurrence(d, n, avgdl, cfg) for d in df], dtype=DTYPE)
           if cfg.method in NONOCCURRENCE else None)
    per_pair = np.repeat(np.arange(len(df)), df)
    data = pair_scores(np.asarray(counts.tf), np.asarray(counts.doc_len)[np.asarray(counts.indices)],
                       idfs[per_pair], None if non is None else non[per_pair], avgdl, cfg)
    return data, non
