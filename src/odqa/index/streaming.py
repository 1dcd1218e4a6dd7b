"""The sparse part of an index built from a stream of passages, in chunks.

A chunk of passages is written to `passages.jsonl`, analysed, and its terms turned into ids of a
vocabulary that grows as chunks come; only those ids stay (`TokenIds`: 4 bytes a term in one flat
array), never the corpus's texts or term strings. bm25s then indexes the ids
(`bm25s.tokenization.Tokenized`). The index equals the one `SparseRetriever.build` makes from the
whole corpus in memory (same scores, same ranking; only the vocabulary's numbering differs).
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from odqa.config import BM25Config
from odqa.corpus.stream import _text_key
from odqa.index import segments, store
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever, passage_text
from odqa.text.analyzers import Analyzer
from odqa.types import Passage

CHUNK_PASSAGES = 20_000       # passages analysed together (a process pool's work per round) ...
CHUNK_CHARS = 8_000_000       # ... or fewer, when they add up to this many characters


class TokenIds(Sequence):
    """Each document's term ids: one flat int32 array plus where each document ends. A document is
    handed out as a list of ints when asked for (what bm25s iterates while it indexes)."""

    def __init__(self) -> None:
        self._flat = array.array("i")
        self._ends = array.array("q", [0])

    def append(self, ids: Iterable[int]) -> None:
        self._flat.extend(ids)
        self._ends.append(len(self._flat))

    def __len__(self) -> int:
        return len(self._ends) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return self._flat[self._ends[i]:self._ends[i + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        flat, ends = self._flat, self._ends
        for i in range(len(ends) - 1):
            yield flat[ends[i]:ends[i + 1]].tolist()

    @property
    def n_terms(self) -> int:
        return len(self._flat)

    def arrays(self):
        """(every term id, where each document ends from 0) as numpy views of the flat arrays."""
        import numpy as np
        return np.frombuffer(self._flat, dtype=np.int32), np.frombuffer(self._ends, dtype=np.int64)


def chunks(passages: Iterable[Passage], max_passages: int = CHUNK_PASSAGES,
           max_chars: int = CHUNK_CHARS) -> Iterator[list[Passage]]:
    """Consecutive lists of passages, each of at most `max_passages` or about `max_chars` characters."""
    chunk, chars = [], 0
    for p in passages:
        chunk.append(p)
        chars += len(p.text)
        if len(chunk) >= max_passages or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


@dataclass
class StreamedSparse:
    scorer: BM25Scorer
    passages: int
    terms: int
    vocabulary: int


def analyse_stream(passages: Iterable[Passage], analyzer: Analyzer, include_title: bool,
                   writer: store.PassageWriter | None = None, progress: Callable[[float], None] | None = None,
                   max_passages: int = CHUNK_PASSAGES) -> tuple[TokenIds, dict[str, int]]:
    """(term ids of every passage, vocabulary term -> id), analysing `passages` a chunk at a time and
    writing each chunk to `writer` first when one is given."""
    ids, vocab = TokenIds(), {}
    for chunk in chunks(passages, max_passages):
        if writer is not None:
            writer.write(chunk)
        for terms in analyzer.tokenize([passage_text(p, include_title) for p in chunk], progress):
            ids.append([vocab.setdefault(t, len(vocab)) for t in terms])
    return ids, vocab


def fit_ids(ids: TokenIds, vocab: dict[str, int], cfg: BM25Config) -> BM25Scorer:
    """A bm25s scorer indexed from term ids and their vocabulary."""
    from bm25s.tokenization import Tokenized
    return BM25Scorer(cfg).fit(Tokenized(ids=ids, vocab=vocab))


def build_sparse_streamed(passages: Iterable[Passage], folder: Path, analyzer: Analyzer, cfg: BM25Config,
                          include_title: bool = True, progress: Callable[[float], None] | None = None,
                          max_passages: int = CHUNK_PASSAGES) -> StreamedSparse:
    """Write `passages.jsonl` and `bm25/` of an index into `folder` from `passages`, read once, in chunks
    (aliases.json and the manifest are the caller's: they need the whole stream's counts)."""
    keys: tuple[list[str], list[bytes]] = ([], [])

    def noted(stream: Iterable[Passage]) -> Iterator[Passage]:      # ids and text digests, for live updates
        for p in stream:
            keys[0].append(p.id)
            keys[1].append(_text_key(p.text.strip()))
            yield p
    with store.PassageWriter(folder) as writer:
        ids, vocab = analyse_stream(noted(passages), analyzer, include_title, writer, progress, max_passages)
    scorer = fit_ids(ids, vocab, cfg)
    out = StreamedSparse(scorer, len(ids), ids.n_terms, len(vocab))
    SparseRetriever([], analyzer, scorer, include_title).save(folder)
    segments.write_base_counts(folder / "bm25", *ids.arrays(), len(vocab))   # what live updates score from
    segments.write_keys(folder, 0, *keys)
    return out
