"""Build and load indexes through a registry of backends (local folder, Elasticsearch).

A backend is a module with `build(corpus_path, name, cfg, root, force, quiet, connection) ->
BuildResult` and `load(name, folder, manifest, connection) -> Index`. It is imported by name
only when an index asks for it, so no backend imports another (and the Elasticsearch client
stays optional).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from odqa.config import IndexConfig
from odqa.errors import OdqaError
from odqa.retrieval import manifest as mf
from odqa.retrieval import store
from odqa.retrieval.index import Index
from odqa.retrieval.manifest import BuildResult

BACKENDS = {"local": "odqa.retrieval.local", "elasticsearch": "odqa.retrieval.elastic"}


def backend(name: str):
    """The backend module registered as `name`."""
    if name not in BACKENDS:
        raise OdqaError(f"unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    return importlib.import_module(BACKENDS[name])


def build_index(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
                quiet: bool = False, connection=None, device: str = "auto") -> BuildResult:
    """Build (or update) index NAME with the backend `cfg.backend`; unchanged parts are reused, not rebuilt.

    With `cfg.backend == "elasticsearch"` the index lives on a cluster (`connection`, else ODQA_ES_* env)
    and `indexes/NAME/` only holds a pointer to it (see `odqa.retrieval.elastic`)."""
    return backend(cfg.backend).build(corpus_path, name, cfg, root, force, quiet, connection, device=device)


def load_index(name: str, root=None, connection=None) -> Index:
    """Index NAME, local or on Elasticsearch (`connection`, else the pointer's URL with ODQA_ES_* credentials)."""
    folder = store.open_folder(name, root)
    manifest = mf.read_manifest(folder, name, root)
    return backend(manifest.get("backend", "local")).load(name, folder, manifest, connection)
