"""Index folders: `indexes/NAME/` = manifest.json + passages.jsonl + aliases.json + artefacts.

Writes go to a hidden temporary folder that is renamed into place at the end, so an
interrupted build never leaves half an index and the previous one keeps serving. What the
manifest holds and how it is checked lives in `odqa.retrieval.manifest`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterator

from odqa.atomic import recover
from odqa.corpus import Corpus, write_jsonl
from odqa.errors import OdqaError
from odqa.retrieval.manifest import MANIFEST, write_json
from odqa.types import Passage

_NAME = re.compile(r"[A-Za-z0-9가-힣][A-Za-z0-9가-힣_.-]*")


def index_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("ODQA_INDEX_DIR") or "indexes")


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


def write_passages(folder: Path, corpus: Corpus) -> None:
    write_jsonl(folder / "passages.jsonl",
                ({"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id} for p in corpus.passages))
    write_json(folder / "aliases.json", corpus.aliases)


def read_passages(folder: Path) -> Iterator[Passage]:
    with open(folder / "passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            yield Passage(r["id"], r["title"], r["text"], r["doc_id"])
