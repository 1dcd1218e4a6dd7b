"""Long texts cut into pieces of bounded length, so analysis costs time linear in a text's length.

MeCab's time grows with the square of the text it is given (160k characters: 6 s, a 5 MB passage:
over 20 minutes), so the analyzers (`analyzers.py`, `morphs.py`) never hand it more than
`PIECE_CHARS` characters at once: a longer text is cut at a sentence end, else at whitespace, else
hard, and each piece's offsets are shifted back into the full text. Texts up to the bound are
analysed whole, exactly as before. `token_prefix` does the same for HF tokenizers where only the
first `max_length` tokens are used.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")

PIECE_CHARS = 2000        # 2,000-character pieces analyse at MeCab's rate on short passages (BENCHMARKS.md)
_SENTENCE_ENDS = ("\n", ". ", "? ", "! ", "。")
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """`text` with lone surrogates (JSON's "\\ud800" escapes decode to them; MeCab and UTF-8 refuse them)
    replaced by U+FFFD, so offsets stay the same."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _cut(text: str, start: int, limit: int) -> int:
    """Where the piece starting at `start` ends: after the last sentence end in the second half of
    the allowed span, else after its last whitespace, else at the bound itself."""
    lo, hi = start + limit // 2, start + limit
    ends = [at + len(sep) for sep in _SENTENCE_ENDS for at in (text.rfind(sep, lo, hi),) if at >= 0]
    if ends:
        return max(ends)
    space = max(text.rfind(" ", lo, hi), text.rfind("\t", lo, hi))
    return space + 1 if space >= 0 else hi


def spans(text: str, limit: int = PIECE_CHARS) -> list[tuple[int, int]]:
    """(start, end) of consecutive pieces covering `text`, each at most `limit` characters."""
    if limit <= 0 or len(text) <= limit:
        return [(0, len(text))]
    out, start = [], 0
    while len(text) - start > limit:
        end = _cut(text, start, limit)
        out.append((start, end))
        start = end
    out.append((start, len(text)))
    return out


def split_texts(texts: Sequence[str], limit: int = PIECE_CHARS) -> tuple[list[str], list[int], list[int]]:
    """Every text's pieces, flattened: (pieces, owner text index of each, start offset of each); lone
    surrogates are replaced (`clean`)."""
    pieces: list[str] = []
    owners: list[int] = []
    starts: list[int] = []
    for i, text in enumerate(texts):
        for s, e in spans(text, limit):
            pieces.append(clean(text[s:e]))
            owners.append(i)
            starts.append(s)
    return pieces, owners, starts


def batches(pieces: Sequence[str], max_pieces: int, max_chars: int) -> list[range]:
    """Consecutive ranges of piece indices, each holding at most `max_pieces` pieces and (unless one
    piece alone is longer) `max_chars` characters: equal work per batch for a pool and progress."""
    out, start, chars = [], 0, 0
    for i, p in enumerate(pieces):
        if i > start and (i - start >= max_pieces or chars + len(p) > max_chars):
            out.append(range(start, i))
            start, chars = i, 0
        chars += len(p)
    if start < len(pieces):
        out.append(range(start, len(pieces)))
    return out


def share(texts: Sequence[str], pieces: Sequence[str], owners: Sequence[int], idx: range) -> float | int:
    """How many texts the pieces `idx` are worth (a whole text = 1): an int when they are whole texts,
    so progress bars over texts keep counting in whole units on ordinary corpora."""
    parts = [len(pieces[i]) / len(texts[owners[i]]) if len(pieces[i]) != len(texts[owners[i]]) else 1
             for i in idx]
    total = sum(parts)
    return int(total) if all(p == 1 for p in parts) else total


def map_pieces(texts: Sequence[str], run: Callable[[list[str]], list[list[T]]],
               progress: Callable[[float], None] | None = None, *, max_pieces: int = 500, max_chars: int = 100_000,
               shift: Callable[[list[T], int], list[T]] | None = None,
               mapper: Callable[..., Iterable[list[list[T]]]] = map, limit: int = PIECE_CHARS) -> list[list[T]]:
    """`run` (a batch of strings -> one list per string) over every text's pieces, batched by
    `batches`, the results joined back per text (`shift(items, offset)` moves a piece's results to
    the full text's offsets); `progress` gets each batch's worth in texts. `mapper` may be a process
    pool's `map` (then `run` must be picklable)."""
    pieces, owners, starts = split_texts(texts, limit)
    groups = batches(pieces, max_pieces, max_chars)
    out: list[list[T]] = [[] for _ in texts]
    for group, results in zip(groups, mapper(run, [[pieces[i] for i in g] for g in groups])):
        for i, items in zip(group, results):
            out[owners[i]].extend(shift(items, starts[i]) if shift is not None and starts[i] else items)
        if progress:
            progress(share(texts, pieces, owners, group))
    return out


def token_prefix(text: str, max_tokens: int, count: Callable[[str], int], chars_per_token: int = 8) -> str:
    """The text cut (at whitespace) to a prefix holding more than `max_tokens` tokens by `count`, or the
    whole text: tokenising a 5 MB string to keep 256 of its tokens takes 25 s, its prefix milliseconds.
    The prefix starts with the same tokens as the text (tokenizers split words at whitespace first)."""
    n = max(1024, max_tokens * chars_per_token)
    while n < len(text):
        end = _cut(text, 0, n)
        if count(text[:end]) > max_tokens + 1:
            return text[:end]
        n *= 4
    return text
