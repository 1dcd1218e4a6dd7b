"""Top-k BM25 straight from bm25s's precomputed score matrix, without `bm25s.BM25.retrieve`'s per-call cost.

bm25s stores every (term, document) BM25 score in a CSC matrix: term t's documents are
`indices[indptr[t]:indptr[t + 1]]`, their scores the same slice of `data`. A query's scores are the
sum of its terms' slices. `retrieve` does that too, but each call also checks its arguments, makes a
progress bar and (with `n_threads`) a thread pool: most of a one-question search's time.

`CscScores` does the same arithmetic in the same order (float32, query terms in order, repeats
counted, unknown terms dropped, bm25l/bm25+'s non-occurrence constant added), so every score is
bm25s's to the bit, and keeps the same k best. Only equal scores are ordered differently: bm25s leaves
their order to `np.argpartition` (arbitrary, and slow on the many equal zeros of a short query);
here they come in document order, so a ranking no longer depends on the selection algorithm
(tests/test_bm25.py compares both). The arrays may be numpy memmaps: they are only sliced, never
copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# bm25s's file names (`bm25s.BM25.save`): a saved index is read without importing bm25s (and numba)
PARAMS, VOCAB = "params.index.json", "vocab.index.json"
ARRAYS = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
NONOCCURRENCE = "nonoccurrence_array.index.npy"
NONOCCURRENCE_METHODS = ("bm25l", "bm25+")


@dataclass
class CscScores:
    data: np.ndarray       # BM25 score of each (term, document) pair, term-major
    indices: np.ndarray    # the document of each
    indptr: np.ndarray     # term t's pairs: [indptr[t], indptr[t + 1])
    num_docs: int
    vocab: dict[str, int]  # term -> its column
    dtype: np.dtype
    nonoccurrence: np.ndarray | None = None   # bm25l / bm25+: a term's score in a document without it

    @classmethod
    def of(cls, model) -> "CscScores":
        """The score matrix of a fitted or loaded `bm25s.BM25` (shared, not copied)."""
        sc = model.scores
        non = getattr(model, "nonoccurrence_array", None)
        return cls(np.asarray(sc["data"]), np.asarray(sc["indices"]), np.asarray(sc["indptr"]),
                   int(sc["num_docs"]), model.vocab_dict, np.dtype(model.dtype),
                   None if non is None else np.asarray(non))

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> "CscScores":
        """The score matrix bm25s saved in `folder`, read as `bm25s.BM25.load` reads it (its arrays mapped from
        the files with `mmap`), without importing bm25s."""
        folder = Path(folder)
        params = json.loads((folder / PARAMS).read_text(encoding="utf-8"))
        vocab = json.loads((folder / VOCAB).read_text(encoding="utf-8"))
        mode = "r" if mmap else None
        # plain ndarray views of the mappings: slicing a np.memmap makes a memmap object per slice (3x the cost)
        arrays = {k: np.asarray(np.load(folder / name, mmap_mode=mode)) for k, name in ARRAYS.items()}
        non = None
        if params.get("method") in NONOCCURRENCE_METHODS:
            non = np.load(folder / NONOCCURRENCE)
        return cls(arrays["data"], arrays["indices"], arrays["indptr"], int(params["num_docs"]), vocab,
                   np.dtype(params.get("dtype", "float32")), non)

    def scores(self, terms: list[str]) -> np.ndarray:
        """Every document's score for one query's terms."""
        vocab = self.vocab
        ids = [vocab[t] for t in terms if t in vocab]
        out = np.zeros(self.num_docs, dtype=self.dtype)
        if not ids:
            return out
        ptr, data, indices = self.indptr, self.data, self.indices
        for t in ids:
            a, b = ptr[t], ptr[t + 1]
            # a term's documents are distinct, so this is bm25s's np.add.at, element for element
            out[indices[a:b]] += data[a:b]
        if self.nonoccurrence is not None:
            out += self.nonoccurrence[np.asarray(ids)].sum()
        return out

    def top(self, terms: list[str], k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(documents, scores) of one query's k best (0 < k <= num_docs, or <= len(rows)), best first; equal
        scores in document order, and of documents tied at the k-th score the first ones are kept. `rows`
        (sorted document numbers): rank only those (a metadata filter)."""
        return top_among(self.scores(terms), k, rows)

    def top_k(self, queries: list[list[str]], k: int,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(documents, scores), each (n_queries, k), for k <= num_docs (or <= len(rows) when given)."""
        docs = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=self.dtype)
        if k == 0:
            return docs, scores
        for i, terms in enumerate(queries):
            docs[i], scores[i] = self.top(terms, k, rows)
        return docs, scores


def top_among(s: np.ndarray, k: int, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`top_of` over the documents `among` (sorted document numbers; None: all of them), as document numbers."""
    if among is None:
        return top_of(s, k)
    docs, kept = top_of(s[among], k)
    return among[docs], kept


def top_of(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(documents, scores) of the k best of scores `s` (0 < k <= len(s)), best first; equal scores in
    document order, and of documents tied at the k-th score the first ones are kept."""
    if k < len(s):
        kth = -np.partition(-s, k - 1)[k - 1]    # the k-th best score (this way round: 4x faster)
        above = np.flatnonzero(s > kth)
        docs = np.concatenate([above, np.flatnonzero(s == kth)[:k - len(above)]])
    else:
        docs = np.arange(len(s))
    kept = s[docs]
    order = np.lexsort((docs, -kept))
    return docs[order], kept[order]
