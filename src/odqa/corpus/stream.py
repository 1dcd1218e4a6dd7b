"""Loading a corpus: its passages read one at a time (`CorpusStream`) or all in memory (`load_corpus`),
cleaned, passages without text counted and dropped, exact-duplicate texts merged (every original id kept
as an alias of the kept passage), long documents optionally chunked."""

from __future__ import annotations

import array
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from odqa.corpus.chunking import chunk_passages
from odqa.corpus.files import file_sha256
from odqa.corpus.formats import FORMATS, READERS, Fields, detect_format
from odqa.errors import CorpusError
from odqa.text.pieces import clean
from odqa.types import Passage

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    passages: list[Passage]
    aliases: dict[str, str] = field(default_factory=dict)  # original id -> kept id
    n_duplicates: int = 0
    n_empty: int = 0          # rows skipped because their text is empty or whitespace
    sha256: str = ""
    source: str = ""
    fmt: str = ""

    @property
    def n_passages(self) -> int:
        return len(self.passages)

    def canonical(self, pid: str) -> str:
        return self.aliases.get(pid, pid)


LONG_PASSAGE_CHARS = 100_000   # a passage longer than this and than LONG_PASSAGE_RATIO x the median is warned about
LONG_PASSAGE_RATIO = 20


def warn_long_passages(path: Path, lengths, long: list[tuple[str, int]]) -> None:
    """One warning when some passages are far longer than the rest: they are analysed in pieces, but
    retrieval scores each as a whole and a reader reads all of it. `lengths`: every passage's length;
    `long`: (id, length) of those over LONG_PASSAGE_CHARS (the only ones that can be warned about)."""
    median = sorted(lengths)[len(lengths) // 2]
    limit = max(LONG_PASSAGE_CHARS, LONG_PASSAGE_RATIO * median)
    over = [(pid, n) for pid, n in long if n > limit]
    if over:
        top, most = max(over, key=lambda x: x[1])
        log.warning(f"{path}: {len(over)} passage(s) far longer than the rest (the longest, '{top}', has "
                    f"{most:,} characters; the median {median:,}): split them with "
                    f"--set corpus.chunk_size=1000")


def _text_key(text: str) -> bytes:
    """What de-duplication compares: a 128-bit digest of the stripped text (not the text itself, so
    memory stays a few dozen bytes per passage however long the passages are)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CorpusStream:
    """The corpus at `path`, read one passage at a time: iterate it once for the kept passages
    (cleaned, empty ones skipped, exact-duplicate texts merged into aliases); the counts
    (`n_passages`, `n_duplicates`, `n_empty`, `aliases`) are complete when the iteration ends.

    Memory holds a 16-byte digest and the id of each kept passage, never the corpus's texts."""

    def __init__(self, path: str | Path, fmt: str = "auto", chunk_size: int = 0, chunk_overlap: int = 0,
                 dedup: bool = True, encoding: str | None = None, fields: Fields | None = None):
        path = Path(path)
        if not path.exists():
            raise CorpusError(f"{path}: corpus not found")
        if fmt not in FORMATS:
            raise CorpusError(f"unknown corpus format '{fmt}' (choose from {', '.join(FORMATS)})")
        self.path, self.encoding, self.fields = path, encoding, fields or Fields()
        self.fmt = detect_format(path, encoding) if fmt == "auto" else fmt
        self.chunk_size, self.chunk_overlap, self.dedup = chunk_size, chunk_overlap, dedup
        self.sha256, self.source = file_sha256(path), str(path.resolve())
        self.aliases: dict[str, str] = {}
        self.n_passages = self.n_duplicates = self.n_empty = 0
        self._used = False

    def __iter__(self) -> Iterator[Passage]:
        if self._used:
            raise RuntimeError("a CorpusStream is read once")
        self._used = True
        path = self.path
        stream: Iterable[Passage] = READERS[self.fmt](path, self.encoding, self.fields)
        if self.chunk_size:
            stream = chunk_passages(stream, self.chunk_size, self.chunk_overlap)
        by_text: dict[bytes, str] = {}
        seen_ids: set[str] = set()
        lengths = array.array("q")
        long: list[tuple[str, int]] = []
        for p in stream:
            p = Passage(clean(p.id), clean(p.title), clean(p.text), clean(p.doc_id), p.metadata)   # lone surrogates out
            key = p.text.strip()
            if not key:
                self.n_empty += 1
                continue
            digest = _text_key(key) if self.dedup else b""
            if self.dedup and digest in by_text:
                self.n_duplicates += 1
                if p.id != by_text[digest]:
                    self.aliases[p.id] = by_text[digest]
                continue
            if p.id in seen_ids:
                raise CorpusError(f"{path}: duplicate passage id '{p.id}' with different text")
            seen_ids.add(p.id)
            if self.dedup:
                by_text[digest] = p.id
            lengths.append(len(p.text))
            if len(p.text) > LONG_PASSAGE_CHARS:
                long.append((p.id, len(p.text)))
            self.n_passages += 1
            yield p
        if not self.n_passages:
            raise CorpusError(f"{path}: corpus has no passages with text ({self.n_empty} empty skipped)")
        if not self.chunk_size:
            warn_long_passages(path, lengths, long)


def load_corpus(path: str | Path, fmt: str = "auto", chunk_size: int = 0, chunk_overlap: int = 0,
                dedup: bool = True, encoding: str | None = None, fields: Fields | None = None) -> Corpus:
    """The corpus at `path` (`fmt` auto-detected by default; files decoded as `encoding`, else UTF-8),
    all in memory; `CorpusStream` reads the same passages one at a time."""
    stream = CorpusStream(path, fmt, chunk_size, chunk_overlap, dedup, encoding, fields)
    kept = list(stream)
    return Corpus(kept, stream.aliases, stream.n_duplicates, stream.n_empty, stream.sha256, stream.source,
                  stream.fmt)
