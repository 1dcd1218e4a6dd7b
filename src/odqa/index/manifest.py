"""The index manifest: format version, migrations from older versions, build results, staleness.

Every index (local folder or Elasticsearch pointer + `_meta.odqa`) carries a manifest. This
module is the one place that knows its shape:

- `FORMAT_VERSION` and `MIGRATIONS`: a manifest of an older version is brought up to date in
  memory by the registered steps (version N -> N + 1); one older than the oldest step, or newer
  than this odqa, is refused with the exact command that rebuilds it.
- `new_manifest`, `corpus_record`: what a build records; `write_manifest`: the size and checksum of
  every file of the folder (`checksums`, see `odqa.checksums`) and of the manifest itself
  (`manifest_checksum`), written last, after every other file.
- `build_settings`, `same_build`, `same_dense`, `same_vectors`: what decides a rebuild.
- `staleness`: why a loaded index no longer matches its sources or tools.

No backend is imported here: local and Elasticsearch backends both import this module.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from odqa import checksums
from odqa.atomic import atomic_write_text
from odqa.version import __version__
from odqa.config import DenseConfig, HybridConfig, IndexConfig, to_dict, with_changes
from odqa.corpus import Corpus, CorpusStream, file_sha256
from odqa.errors import IndexCorrupt, IndexNotFound, IndexStale
from odqa.text.normalize import NORMALIZATION

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
SELF_CHECKSUM = "manifest_checksum"
DENSE_KEYS = ("encoder", "encoder_sha256", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist",
              "pq_m", "normalization")
# keys added after indexes were built without them (vectors of text read before normalisation: None)
DENSE_DEFAULTS = {"window_stride": 0, "pq_m": 0, "normalization": None}
ANALYZER_DEFAULTS = {"decompound": "none"}  # the same for the analyzer (a mecab index built before decompounding)
# what the stored passage vectors depend on besides the passages' text: an encoder that only changes the
# query side (a query-side fine-tuned folder over the same passage encoder) keeps them
DENSE_CONFIG_KEYS = ("encoder", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist", "pq_m")
VECTOR_KEYS = ("passage_sha256", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist",
               "pq_m", "e5_prefixes", "normalization")


def _v1_to_v2(m: dict) -> dict:
    """Version 2 names the backend in every manifest and records the hybrid fusion settings
    (`hybrid`, search-time defaults; version 1 indexes used the built-in defaults)."""
    return {**m, "format_version": 2, "backend": m.get("backend", "local"), "hybrid": m.get("hybrid")}


def _v2_to_v3(m: dict) -> dict:
    """Version 3 records the size and checksum of every file (`checksums`). A version-2 index loads
    unchecked (`checksums: None`, reported as stale) until `odqa index` records them (no rebuild)."""
    return {**m, "format_version": 3, "checksums": m.get("checksums")}


# version N -> the step that turns a version-N manifest into version N + 1
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3}


def rebuild_command(name: str, manifest: dict | None = None, root: str | Path | None = None) -> str:
    """The exact command that rebuilds index NAME from the corpus its manifest names."""
    corpus = ((manifest or {}).get("corpus") or {}).get("path") or "CORPUS"
    backend = " --backend elasticsearch" if (manifest or {}).get("backend") == "elasticsearch" else ""
    where = f" --index-dir {root}" if root else ""
    return f"odqa index {corpus} --name {name}{backend}{where} --force"


def migrate(manifest: dict, name: str, where: str, root: str | Path | None = None) -> dict:
    """`manifest` at FORMAT_VERSION, migrated step by step; refused if no path leads there."""
    version = first = manifest.get("format_version")
    while isinstance(version, int) and version < FORMAT_VERSION and version in MIGRATIONS:
        manifest = MIGRATIONS[version](manifest)
        version = manifest["format_version"]
    if version != FORMAT_VERSION:
        raise IndexStale(f"{where}: index '{name}' has format version {version}, this odqa reads "
                         f"{FORMAT_VERSION} (and migrates from {min(MIGRATIONS)}): rebuild with "
                         f"`{rebuild_command(name, manifest, root)}`")
    return manifest if version == first else {**manifest, "migrated_from": first}


def manifest_path(folder: Path) -> Path:
    return folder / MANIFEST


def read_manifest(folder: Path, name: str, root: str | Path | None = None) -> dict:
    """The manifest of the index in `folder`, migrated to this format version."""
    path = manifest_path(folder)
    if not path.exists():
        if folder.is_dir():
            rebuild = f"odqa index CORPUS --name {name}" + (f" --index-dir {root}" if root else "") + " --force"
            raise IndexNotFound(f"{path}: manifest missing (the folder of index '{name}' is there without it); "
                                f"rebuild it with `{rebuild}`")
        raise IndexNotFound(f"index '{name}' not found in {folder.parent}/: build it with "
                            f"`odqa index CORPUS --name {name}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise IndexCorrupt(f"{path}:{e.lineno}: malformed manifest ({e.msg}); rebuild with "
                           f"`{rebuild_command(name, None, root)}`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise IndexCorrupt(f"{path}: unreadable manifest ({e}); rebuild with "
                           f"`{rebuild_command(name, None, root)}`") from None
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"{path}: manifest is not a JSON object; rebuild with "
                           f"`{rebuild_command(name, None, root)}`")
    if (manifest.get("format_version") == FORMAT_VERSION and SELF_CHECKSUM in manifest
            and manifest[SELF_CHECKSUM] != self_checksum(manifest)):
        raise IndexCorrupt(f"{path}: altered (its content no longer matches its {SELF_CHECKSUM}); rebuild with "
                           f"`{rebuild_command(name, manifest, root)}`")
    return migrate(manifest, name, str(path), root)


def json_text(data) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def write_json(path: Path, data) -> None:
    path.write_text(json_text(data), encoding="utf-8")


def self_checksum(manifest: dict) -> str:
    """Checksum of the manifest's content without its own checksum field (key order and layout ignored)."""
    body = json.dumps({k: v for k, v in manifest.items() if k != SELF_CHECKSUM}, ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(body.encode("utf-8"), digest_size=16).hexdigest()


def write_manifest(folder: Path, manifest: dict, rehash: bool = True) -> dict:
    """Write the manifest of index folder `folder` last, recording every other file's size and checksum
    (`rehash=False` keeps a record already there); written aside, then renamed. Returns what was written."""
    if rehash or not manifest.get("checksums"):
        manifest = {**manifest, "checksums": checksums.record(folder, skip=(MANIFEST,))}
    manifest = {k: v for k, v in manifest.items() if k not in ("migrated_from", SELF_CHECKSUM)}
    manifest[SELF_CHECKSUM] = self_checksum(manifest)
    atomic_write_text(manifest_path(folder), json_text(manifest))
    return manifest


def corpus_record(corpus: Corpus | CorpusStream, path: Path, corpus_cfg: dict) -> dict:
    """What the manifest records of the corpus (a `CorpusStream` once it has been read through)."""
    st = path.stat()
    return {"path": corpus.source, "sha256": corpus.sha256, "size": st.st_size, "mtime": st.st_mtime,
            "format": corpus.fmt, "passages": corpus.n_passages,
            "duplicates_merged": corpus.n_duplicates, "empty_skipped": corpus.n_empty, **corpus_cfg}


def new_manifest(name: str, corpus: dict, analyzer: dict, sparse: dict, build_seconds: float,
                 backend: str = "local", hybrid: dict | None = None) -> dict:
    return {"format_version": FORMAT_VERSION, "odqa_version": __version__, "name": name, "backend": backend,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "build_seconds": round(build_seconds, 3),
            "corpus": corpus, "analyzer": analyzer, "sparse": sparse, "dense": None, "hybrid": hybrid}


@dataclass
class BuildResult:
    status: str               # built | rebuilt | up-to-date
    folder: Path
    manifest: dict
    reasons: list[str] = field(default_factory=list)
    parts: dict[str, str] = field(default_factory=dict)   # part -> built | rebuilt | kept | dropped


@dataclass
class UpdateResult:
    status: str                   # updated | compacted | unchanged
    folder: Path
    manifest: dict
    added: list[str] = field(default_factory=list)       # ids indexed (new and replacing)
    replaced: list[str] = field(default_factory=list)    # ids whose old passage was replaced (upsert)
    deleted: list[str] = field(default_factory=list)     # ids deleted (passages and aliases)
    aliased: dict[str, str] = field(default_factory=dict)   # new id -> the remaining passage of the same text
    empty_skipped: int = 0
    seconds: float = 0.0


# --- what decides a rebuild ----------------------------------------------------------------------

def dense_settings(cfg: DenseConfig) -> dict | None:
    if not cfg.enabled:
        return None
    from odqa.modeling.backbone import backbone_info
    from odqa.retrieval.dense import check_stride, encoder_fingerprint, passage_encoder_spec
    info = backbone_info(cfg.encoder)
    check_stride(cfg.window_stride)
    passages = passage_encoder_spec(info.path) if info.kind == "local" else None
    sha = encoder_fingerprint(info.path)
    return {"encoder": cfg.encoder, "encoder_sha256": sha,
            "passage_sha256": encoder_fingerprint(backbone_info(passages).path) if passages else sha,
            "max_length": cfg.max_length, "window_stride": cfg.window_stride, "quantize": cfg.quantize,
            "index": cfg.index, "hnsw_m": cfg.hnsw_m, "ivf_nlist": cfg.ivf_nlist, "pq_m": cfg.pq_m, "e5_prefixes": info.e5_prefixes,
            "normalization": NORMALIZATION}


def keep_dense(cfg: IndexConfig, old: dict | None) -> IndexConfig:
    """`dense.enabled` unset (neither --dense nor --no-dense): an index with vectors keeps them, with the
    settings it was built with; one without stays without."""
    if cfg.dense.enabled is not None:
        return cfg
    d = (old or {}).get("dense")
    kept = {k: d[k] for k in DENSE_CONFIG_KEYS if k in d} if d else {}
    return with_changes(cfg, dense=with_changes(cfg.dense, enabled=bool(d), **kept))


def build_settings(cfg: IndexConfig, analyzer_spec: dict) -> dict:
    """What a build records per part (corpus, analyzer, sparse, dense); a change rebuilds that part."""
    corpus = to_dict(cfg.corpus)
    corpus.pop("format")
    return {"corpus": corpus, "analyzer": analyzer_spec,
            "sparse": {"backend": "bm25s", "include_title": cfg.include_title, **to_dict(cfg.bm25)},
            "dense": dense_settings(cfg.dense)}


def hybrid_settings(cfg: HybridConfig) -> dict:
    """Search-time fusion defaults stored with the index (a change rewrites the manifest, no rebuild)."""
    return to_dict(cfg)


def same_build(old: dict, new_corpus_sha: str, settings: dict) -> list[str]:
    """Differences between an existing manifest and what a new build would record ([] = no-op)."""
    diffs = []
    if old.get("corpus", {}).get("sha256") != new_corpus_sha:
        diffs.append("corpus content")
    for key, value in settings.items():
        have = old.get(key) if key != "corpus" else {k: old["corpus"].get(k) for k in value}
        if key == "analyzer" and isinstance(have, dict) and isinstance(value, dict):
            have = {**{k: v for k, v in ANALYZER_DEFAULTS.items() if k in value}, **have}
        if have != value:
            diffs.append(key)
    return diffs


def same_dense(old: dict | None, new: dict | None) -> bool:
    return bool(old and new) and all(old.get(k, DENSE_DEFAULTS.get(k)) == new.get(k, DENSE_DEFAULTS.get(k))
                                     for k in DENSE_KEYS)


def same_vectors(old: dict | None, new: dict | None) -> bool:
    """The stored passage vectors serve the new settings (same passage encoder and layout)."""
    if not (old and new):
        return False
    have = {**{k: old.get(k, DENSE_DEFAULTS.get(k)) for k in VECTOR_KEYS},
            "passage_sha256": old.get("passage_sha256", old.get("encoder_sha256"))}
    return all(have[k] == new.get(k, DENSE_DEFAULTS.get(k)) for k in VECTOR_KEYS)


def rebuild_reasons(old: dict, corpus_sha: str, settings: dict) -> list[str]:
    reasons = same_build(old, corpus_sha, {k: v for k, v in settings.items() if k != "dense"})
    if old.get("updates") and "corpus content" not in reasons:     # passages added or deleted since the build
        reasons.insert(0, "live updates")
    if not same_dense(old.get("dense"), settings["dense"]) and (old.get("dense") or settings["dense"]):
        reasons.append("dense")
    return reasons


# --- integrity of the files of a local index ------------------------------------------------------

def file_problems(folder: Path, manifest: dict, prefix: str = "", full: bool = True,
                  reread: bool = False) -> list[str]:
    """What is wrong with the index's files under `prefix` ([] when they match the manifest, or when it
    records no checksums: an index of format 2). `reread`: hash every file's bytes again (see `odqa.checksums`)."""
    rec = manifest.get("checksums")
    return checksums.problems(folder, rec, prefix, full, reread) if rec else []


def check_files(folder: Path, manifest: dict, name: str, prefix: str = "", full: bool = True,
                root: str | Path | None = None) -> None:
    """Raise IndexCorrupt naming the first bad file under `prefix` and the command that rebuilds the index."""
    found = file_problems(folder, manifest, prefix, full)
    if found:
        more = f" (and {len(found) - 1} more file(s))" if len(found) > 1 else ""
        raise IndexCorrupt(f"{found[0]}{more}; rebuild with `{rebuild_command(name, manifest, root)}`")


def corrupt_file(path: Path, what: str, name: str, manifest: dict, root: str | Path | None = None) -> IndexCorrupt:
    """The error for an index file that cannot be read as what it should be."""
    return IndexCorrupt(f"{path}: unreadable {what}; rebuild with `{rebuild_command(name, manifest, root)}`")


# --- staleness of a loaded index -----------------------------------------------------------------

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
    normalized = an.get("normalization")
    if normalized != NORMALIZATION:
        was = (f"text normalisation {normalized.get('name')} v{normalized.get('version')}"
               if isinstance(normalized, dict) else "no text normalisation (before odqa read NFD, full-width and "
               "compatibility-jamo text as one form)")
        reasons.append(f"built with {was}, this odqa normalises with {NORMALIZATION['name']} "
                       f"v{NORMALIZATION['version']}: rebuild with `{rebuild_command(manifest.get('name', 'NAME'), manifest)}`")
    changed = _corpus_changed(manifest.get("corpus", {}))
    if changed:
        reasons.append(changed)
    if manifest.get("backend", "local") == "local" and not manifest.get("checksums"):
        corpus = (manifest.get("corpus") or {}).get("path") or "CORPUS"
        reasons.append(f"no file checksums recorded (built before format {FORMAT_VERSION}), so its files are not "
                       f"checked: `odqa index {corpus} --name {manifest.get('name')}` records them without a rebuild")
    return reasons
