"""Live index updates from Python: add, delete and replace passages without a rebuild; compact.

    import odqa
    odqa.add_passages("wiki", "new_articles.jsonl")
    odqa.delete_passages("wiki", ["p17", "p18"])
    odqa.upsert_passages("wiki", [odqa.Passage("p3", "세종대왕", "세종대왕은 ...")])
    odqa.compact_index("wiki")

Each call is all or nothing (the previous index keeps serving until the new one is swapped in) and takes the
index's writer lock like a build. A search of the updated index ranks exactly as a full rebuild of the same
passages would; `compact_index` restores the build's precomputed scores. See docs/updates.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, Union

from odqa.device import resolve_device
from odqa.index.indexing import compact_index as _compact
from odqa.index.indexing import update_index as _update
from odqa.types import Passage

Passages = Union[str, Path, Sequence[Passage], Sequence[dict]]


@dataclass
class UpdateReport:
    """What an update or a compaction did (`to_json()` is `odqa index --json`'s output for it)."""
    index: str
    status: str                  # updated | compacted | unchanged
    path: str
    added: list[str] = field(default_factory=list)       # ids indexed (new ones and replacements)
    replaced: list[str] = field(default_factory=list)    # ids whose previous passage was replaced
    deleted: list[str] = field(default_factory=list)     # ids deleted (passages and aliases)
    aliased: dict[str, str] = field(default_factory=dict)  # id -> remaining passage of the same text (not indexed)
    empty_skipped: int = 0
    passages: int = 0            # passages in the index now
    deleted_pending: int = 0     # deleted passages still held in segments (0 after compaction)
    segments: int = 1
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"index": self.index, "status": self.status, "path": self.path, "added": self.added,
                "replaced": self.replaced, "deleted": self.deleted, "aliased": self.aliased,
                "empty_skipped": self.empty_skipped, "passages": self.passages,
                "deleted_pending": self.deleted_pending, "segments": self.segments, "seconds": self.seconds}


def _report(name: str, res) -> UpdateReport:
    m = res.manifest
    live = m.get("live") or {}
    passages = live.get("passages", (m.get("corpus") or {}).get("passages", 0))
    return UpdateReport(name, res.status, str(res.folder), list(res.added), list(res.replaced), list(res.deleted),
                        dict(res.aliased), res.empty_skipped, passages, live.get("deleted", 0),
                        len(live.get("segments", [0])), res.seconds)


def add_passages(name: str, passages: Passages, index_dir: str | Path | None = None, wait: bool = False,
                 connection=None, device: str = "auto", quiet: bool = True) -> UpdateReport:
    """Add passages (a corpus file, read with the index's corpus settings, or Passage objects / dicts) to index
    NAME. An id already there is refused (upsert replaces it); a text equal to a passage's there becomes an
    alias of it. `device` runs the dense encoder for the new passages' vectors."""
    resolve_device(device)
    return _report(name, _update(name, index_dir, add=passages, quiet=quiet, wait=wait, connection=connection,
                                 device=device))


def delete_passages(name: str, ids: Iterable[str], index_dir: str | Path | None = None, wait: bool = False,
                    connection=None) -> UpdateReport:
    """Delete passages (with the aliases that point to them) or aliases by id; an unknown id is refused."""
    return _report(name, _update(name, index_dir, delete=list(ids), wait=wait, connection=connection))


def upsert_passages(name: str, passages: Passages, index_dir: str | Path | None = None, wait: bool = False,
                    connection=None, device: str = "auto", quiet: bool = True) -> UpdateReport:
    """Add passages, replacing those with the same id (the old passage is deleted, the new one added)."""
    resolve_device(device)
    return _report(name, _update(name, index_dir, upsert=passages, quiet=quiet, wait=wait, connection=connection,
                                 device=device))


def update_passages(name: str, add: Passages | None = None, delete: Iterable[str] = (), upsert: Passages | None = None,
                    index_dir: str | Path | None = None, wait: bool = False, connection=None,
                    device: str = "auto", quiet: bool = True) -> UpdateReport:
    """Add, delete and upsert in one all-or-nothing step."""
    resolve_device(device)
    return _report(name, _update(name, index_dir, add=add, delete=list(delete), upsert=upsert, quiet=quiet,
                                 wait=wait, connection=connection, device=device))


def compact_index(name: str, index_dir: str | Path | None = None, wait: bool = False,
                  quiet: bool = True) -> UpdateReport:
    """Merge an updated local index's segments into one with precomputed scores (deleted passages dropped):
    the index a full build of its passages makes; searches return to the build's speed."""
    return _report(name, _compact(name, index_dir, quiet, wait))
