"""Build and load indexes through a registry of backends (local folder, Elasticsearch).

A backend is a module with `build(corpus_path, name, cfg, root, force, quiet, connection) ->
BuildResult` and `load(name, folder, manifest, connection) -> Index`. It is imported by name
only when an index asks for it, so no backend imports another (and the Elasticsearch client
stays optional).
"""

from __future__ import annotations

import errno
import importlib
import time
from contextlib import contextmanager
from pathlib import Path

from odqa.config import IndexConfig
from odqa.errors import IndexCorrupt, Interrupted, OdqaError, StorageError
from odqa.index import manifest as mf
from odqa.index import store
from odqa.index.index import Index
from odqa.index.lock import writer_lock
from odqa.index.manifest import BuildResult

LOAD_ATTEMPTS = 3
BACKENDS = {"local": "odqa.index.local", "elasticsearch": "odqa.index.elastic"}


def backend(name: str):
    """The backend module registered as `name`."""
    if name not in BACKENDS:
        raise OdqaError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[name])


def build_index(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
                quiet: bool = False, connection=None, wait: bool = False, device: str = "auto",
                shards=None) -> BuildResult:
    """Build (or update) index NAME with the backend `cfg.backend`; unchanged parts are reused, not rebuilt.

    With `cfg.backend == "elasticsearch"` the index lives on a cluster (`connection`, else ODQA_ES_* env)
    and `indexes/NAME/` only holds a pointer to it (see `odqa.index.elastic.build`).

    One build per index name at a time (`writer_lock`: another one waits with `wait`, else IndexBusy);
    `shards` (`odqa.index.shards.ShardSource`): the dense vectors come from shards encoded beforehand
    (`encode_index_shard`), checked against this corpus and these settings, instead of being encoded here.

    Ctrl-C raises Interrupted saying that the previous index was kept."""
    existed = mf.manifest_path(store.index_dir(name, root)).exists()
    with storage_errors(name, root, existed), writer_lock(name, root, wait):
        try:
            extra = {"shards": shards} if shards is not None else {}
            return backend(cfg.backend).build(corpus_path, name, cfg, root, force, quiet, connection, device=device,
                                              **extra)
        except KeyboardInterrupt:
            raise Interrupted(f"index '{name}' left unchanged" if existed else
                              f"index '{name}' not created") from None


STORAGE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                  errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "operation not permitted"}


@contextmanager
def storage_errors(name: str, root=None, existed: bool = True):
    """A write that fails for want of space or permission becomes one StorageError line saying what was kept
    (the atomic writes below have already removed their temporary files)."""
    try:
        yield
    except OSError as e:
        if e.errno not in STORAGE_ERRNOS:
            raise
        where = e.filename or store.index_dir(name, root)
        kept = f"index '{name}' left unchanged" if existed else f"index '{name}' not created"
        raise StorageError(f"{where}: {STORAGE_ERRNOS[e.errno]}; {kept}") from None


def update_index(name: str, root=None, add=None, delete=(), upsert=None, quiet: bool = True, wait: bool = False,
                 connection=None, device: str = "auto", encode=None):
    """Add, delete and replace passages of index NAME without a rebuild (`odqa.index.updates` for a local
    index, `odqa.index.elastic.updates` on Elasticsearch), under the writer lock; all or nothing."""
    folder = store.open_folder(name, root)
    manifest = mf.read_manifest(folder, name, root)
    with storage_errors(name, root), writer_lock(name, root, wait):
        try:
            if manifest.get("backend", "local") == "elasticsearch":
                from odqa.index.elastic.updates import update as es_update
                return es_update(name, folder, manifest, add, list(delete), upsert, connection)
            from odqa.index.updates import update
            return update(name, root, add, delete, upsert, quiet, device, encode)
        except KeyboardInterrupt:
            raise Interrupted(f"index '{name}' left unchanged") from None


def compact_index(name: str, root=None, quiet: bool = True, wait: bool = False):
    """Merge the segments of updated local index NAME into one (deleted passages dropped, scores precomputed):
    the index a fresh build of its passages makes. An index without updates is left as it is."""
    with storage_errors(name, root), writer_lock(name, root, wait):
        try:
            from odqa.index.updates import compact
            return compact(name, root, quiet)
        except KeyboardInterrupt:
            raise Interrupted(f"index '{name}' left unchanged") from None


def load_index(name: str, root=None, connection=None, mmap: bool | None = None) -> Index:
    """Index NAME, local or on Elasticsearch (`connection`, else the pointer's URL with ODQA_ES_* credentials).
    `mmap`: map a local index's BM25 score arrays from their files (None: yes, unless ODQA_MMAP=0)."""
    folder = store.open_folder(name, root)
    for attempt in range(LOAD_ATTEMPTS):
        manifest = mf.read_manifest(folder, name, root)
        try:
            index = backend(manifest.get("backend", "local")).load(name, folder, manifest, connection)
            if mmap is not None:
                index.mmap = mmap          # read by the local backend when it first loads bm25/
            return index
        except IndexCorrupt:   # a build swapped the folder in while it was read: read the new one
            now = mf.read_manifest(folder, name, root)
            if attempt + 1 == LOAD_ATTEMPTS or now.get(mf.SELF_CHECKSUM) == manifest.get(mf.SELF_CHECKSUM):
                raise


def verify_index(name: str, root=None) -> dict:
    """Check every file of local index NAME against its manifest: {path, files, bytes, seconds, checksums,
    problems, rebuild} (`checksums` False: an index of format 2, only the manifest could be checked)."""
    folder = store.open_folder(name, root)
    manifest = mf.read_manifest(folder, name, root)
    if manifest.get("backend", "local") != "local":
        raise OdqaError(f"index '{name}' lives on {manifest['backend']}: `verify` checks local index folders")
    t0 = time.perf_counter()
    rec = manifest.get("checksums") or {"files": {}}
    return {"path": str(folder), "files": len(rec["files"]) + 1,
            "bytes": sum(f["size"] for f in rec["files"].values()), "checksums": bool(manifest.get("checksums")),
            "problems": mf.file_problems(folder, manifest, reread=True), "seconds": round(time.perf_counter() - t0, 3),
            "rebuild": mf.rebuild_command(name, manifest, store.root_flag(folder))}


def encode_index_shard(corpus_path: str | Path, name: str, cfg: IndexConfig, shard, root=None,
                       shard_dir: str | Path | None = None, force: bool = False, quiet: bool = False,
                       device: str = "auto"):
    """Encode dense shard I of N (`shard`: 'I/N' or (I, N)) of index NAME into its shard folder
    (`odqa.index.shards`); a shard already there for the same inputs is kept. Several shards of one
    index may be encoded at once (each holds the lock of its own folder)."""
    from odqa.index import shards as sh
    i, n = sh.parse_shard(shard)
    base = sh.shards_root(name, root, shard_dir)
    with writer_lock(f"{name}.shard-{sh.label(i, n)}", root):
        try:
            return sh.encode_shard(sh.read_corpus(corpus_path, cfg), cfg, sh.settings_of(cfg), name, i, n,
                                   base / sh.label(i, n), force, quiet, device)
        except KeyboardInterrupt:
            raise Interrupted(f"shard {sh.label(i, n)} of index '{name}' not written") from None
