"""Index store: `indexes/NAME/` = manifest.json + passages.jsonl + aliases.json + artefacts.

Writes go to a hidden temporary folder that is renamed into place at the end, so an
interrupted build never leaves half an index and the previous one keeps serving.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from odqa import __version__
from odqa.atomic import recover
from odqa.corpus import Corpus, file_sha256, write_jsonl
from odqa.errors import IndexCorrupt, IndexNotFound, IndexStale, OdqaError
from odqa.types import Passage

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def index_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get("ODQA_INDEX_DIR") or "indexes")


def index_dir(name: str, root: str | Path | None = None) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise OdqaError(f"invalid index name '{name}': use letters, digits, '-' or '_'")
    return index_root(root) / name


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_passages(folder: Path, corpus: Corpus) -> None:
    write_jsonl(folder / "passages.jsonl",
                ({"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id} for p in corpus.passages))
    write_json(folder / "aliases.json", corpus.aliases)


def read_passages(folder: Path) -> Iterator[Passage]:
    with open(folder / "passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            yield Passage(r["id"], r["title"], r["text"], r["doc_id"])


def corpus_record(corpus: Corpus, path: Path, corpus_cfg: dict) -> dict:
    st = path.stat()
    return {"path": corpus.source, "sha256": corpus.sha256, "size": st.st_size, "mtime": st.st_mtime,
            "format": corpus.fmt, "passages": len(corpus.passages),
            "duplicates_merged": corpus.n_duplicates, **corpus_cfg}


def new_manifest(name: str, corpus: dict, analyzer: dict, sparse: dict, build_seconds: float) -> dict:
    return {"format_version": FORMAT_VERSION, "odqa_version": __version__, "name": name,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "build_seconds": round(build_seconds, 3),
            "corpus": corpus, "analyzer": analyzer, "sparse": sparse, "dense": None}


def read_manifest(name: str, root: str | Path | None = None) -> tuple[Path, dict]:
    folder = index_dir(name, root)
    recover(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise IndexNotFound(f"index '{name}' not found in {folder.parent}/: build it with "
                        f"`odqa index CORPUS --name {name}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise IndexCorrupt(f"{path}:{e.lineno}: malformed manifest ({e.msg}); rebuild with --force") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexStale(f"index '{name}' has format version {manifest.get('format_version')}, this odqa reads "
                        f"{FORMAT_VERSION}: rebuild with `odqa index CORPUS --name {name} --force`")
    return folder, manifest


def _corpus_changed(rec: dict) -> str | None:
    path = Path(rec.get("path", ""))
    if not path.exists():
        return None
    st = path.stat()
    if st.st_size == rec.get("size") and st.st_mtime == rec.get("mtime"):
        return None
    sha = file_sha256(path)
    if sha != rec.get("sha256"):
        return f"corpus {path} changed since the build (sha256 {rec.get('sha256', '')[:12]} -> {sha[:12]})"
    return None


def staleness(manifest: dict, analyzer_version: Callable[[str], str]) -> list[str]:
    """Human-readable reasons why an index no longer matches its sources or tools."""
    reasons = []
    an = manifest.get("analyzer", {})
    installed = analyzer_version(an.get("name", ""))
    if installed != an.get("version"):
        reasons.append(f"analyzer '{an.get('name')}' was {an.get('version')} at build time, now {installed}")
    changed = _corpus_changed(manifest.get("corpus", {}))
    if changed:
        reasons.append(changed)
    return reasons


def same_build(old: dict, new_corpus_sha: str, settings: dict) -> list[str]:
    """Differences between an existing manifest and what a new build would record ([] = no-op)."""
    diffs = []
    if old.get("corpus", {}).get("sha256") != new_corpus_sha:
        diffs.append("corpus content")
    for key, value in settings.items():
        have = old.get(key) if key != "corpus" else {k: old["corpus"].get(k) for k in value}
        if have != value:
            diffs.append(key)
    return diffs
