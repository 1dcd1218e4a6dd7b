"""Index folders: `indexes/NAME/` = manifest.json + passages.jsonl + aliases.json + artefacts.

Each line of passages.jsonl is one passage: id, title, text, doc_id and, when the corpus has any, its
`metadata` (the fields filters match on).

A loaded index reads its passages on demand (`PassageStore`: the byte offset of each line in memory,
8 bytes a passage, and the file held open), so a million passages cost megabytes, not gigabytes.
Writes go to a hidden temporary folder that is renamed into place at the end, so an
interrupted build never leaves half an index and the previous one keeps serving. What the
manifest holds and how it is checked lives in `odqa.index.manifest`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from odqa.atomic import recover
from odqa.corpus import Corpus, write_jsonl
from odqa.errors import OdqaError
from odqa.settings import env
from odqa.index.manifest import MANIFEST, write_json
from odqa.types import Passage

_NAME = re.compile(r"[A-Za-z0-9가-힣][A-Za-z0-9가-힣_.-]*")


def index_root(root: str | Path | None = None) -> Path:
    return Path(root or env().index_dir or "indexes")


def root_flag(folder: Path) -> Path | None:
    """The `--index-dir` a command about the index in `folder` needs (None: the default root)."""
    return None if folder.parent == index_root() else folder.parent


def check_name(name: str) -> str:
    """An index name is one folder name inside the index root (no path, no hidden folder)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name or "") or ".." in name:
        raise OdqaError(f"invalid index name '{name}': use letters, digits, '-', '_' or '.' (no '/', "
                        f"not starting with '.')")
    return name


def index_dir(name: str, root: str | Path | None = None) -> Path:
    return index_root(root) / check_name(name)


def open_folder(name: str, root: str | Path | None = None) -> Path:
    """The folder of index NAME, with any swap a killed build left half done finished or undone."""
    folder = index_dir(name, root)
    recover(folder)
    return folder


def list_indexes(root: str | Path | None = None) -> list[str]:
    base = index_root(root)
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and (p / MANIFEST).exists()) if base.is_dir() else []


PASSAGES = "passages.jsonl"
_SCAN_BLOCK = 1 << 24
_READ_BATCH = 4096          # passages read at once when iterating a store


def _row(p: Passage) -> dict:
    row = {"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id}
    if p.metadata:
        row["metadata"] = p.metadata
    return row


def _passage(line: bytes | str) -> Passage:
    r = json.loads(line)
    return Passage(r["id"], r["title"], r["text"], r["doc_id"], r.get("metadata") or {})


def write_passages(folder: Path, corpus: Corpus) -> None:
    write_jsonl(folder / PASSAGES, map(_row, corpus.passages))
    write_aliases(folder, corpus.aliases)


def write_aliases(folder: Path, aliases: dict[str, str]) -> None:
    write_json(folder / "aliases.json", aliases)


class PassageWriter:
    """`passages.jsonl` written one passage at a time (`with PassageWriter(folder) as w: w.write(p)`)."""

    def __init__(self, folder: Path):
        self._fh = open(folder / PASSAGES, "w", encoding="utf-8")
        self.count = 0

    def write(self, passages: Iterable[Passage]) -> None:
        for p in passages:
            self._fh.write(json.dumps(_row(p), ensure_ascii=False) + "\n")
            self.count += 1

    def __enter__(self) -> "PassageWriter":
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def read_passages(folder: Path) -> Iterator[Passage]:
    with open(folder / PASSAGES, encoding="utf-8") as fh:
        for line in fh:
            yield _passage(line)


def _line_ends(fh) -> np.ndarray:
    """Byte offsets just past each "\n" of an open binary file, read in blocks (0 prepended)."""
    ends, base = [np.zeros(1, dtype=np.int64)], 0
    for block in iter(lambda: fh.read(_SCAN_BLOCK), b""):
        ends.append(np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10).astype(np.int64) + base + 1)
        base += len(block)
    if base and (len(ends) == 1 or ends[-1].size == 0 or ends[-1][-1] != base):
        ends.append(np.array([base], dtype=np.int64))          # a last line without its newline
    return np.concatenate(ends)


def checked_position(i, n: int) -> int:
    """Passage position `i` of `n` as a sequence reads it (negative from the end); IndexError outside."""
    i = int(i)
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(f"passage {i} out of range ({n} passages)")
    return i


class PassageStore(Sequence):
    """The passages of `passages.jsonl`, each read and parsed when asked for (`store[i]`, slices, iteration).

    Holds the file open: an index folder swapped out by a rebuild (`odqa.atomic`) keeps serving its own
    passages to the processes that loaded it. Reads use `os.pread`, so threads and forked workers share it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = open(self.path, "rb")
        self._fd = self._fh.fileno()
        self._ends = _line_ends(self._fh)

    def __len__(self) -> int:
        return len(self._ends) - 1

    def _bytes(self, start: int, stop: int) -> bytes:
        a, b = int(self._ends[start]), int(self._ends[stop])
        return os.pread(self._fd, b - a, a)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = checked_position(i, len(self))
        return _passage(self._bytes(i, i + 1))

    def __iter__(self) -> Iterator[Passage]:
        for start in range(0, len(self), _READ_BATCH):
            stop = min(start + _READ_BATCH, len(self))
            lines = self._bytes(start, stop).split(b"\n")
            for line in lines[:stop - start]:
                yield _passage(line)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "PassageStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PassageStore({str(self.path)!r}, {len(self)} passages)"
