"""Chunking long documents into overlapping passages (`corpus.chunk_size`, `corpus.chunk_overlap`)."""

from __future__ import annotations

from typing import Iterable, Iterator

from odqa.errors import CorpusError
from odqa.types import Passage


def chunk_text(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """Split into windows of at most `size` characters overlapping by about `overlap`,
    cutting at whitespace where possible. Returns (start offset, piece)."""
    if size <= 0 or len(text) <= size:
        return [(0, text)]
    if not 0 <= overlap < size:
        raise CorpusError(f"chunk overlap ({overlap}) must be >= 0 and < chunk size ({size})")
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        pieces.append((start, text[start:end]))
        if end >= len(text):
            break
        nxt = max(end - overlap, start + 1)
        space = text.find(" ", nxt, end)
        start = space + 1 if space != -1 else nxt
    return pieces


def chunk_passages(passages: Iterable[Passage], size: int, overlap: int) -> Iterator[Passage]:
    for p in passages:
        pieces = chunk_text(p.text, size, overlap)
        if len(pieces) == 1:
            yield p
            continue
        for i, (_, piece) in enumerate(pieces):
            yield Passage(id=f"{p.id}#{i}", title=p.title, text=piece, doc_id=p.doc_id, metadata=p.metadata)
