"""Elasticsearch backend: the same index/retrieve/evaluate commands on a cluster.

Naming. `odqa index CORPUS --backend elasticsearch --name NAME` builds the concrete index
`NAME-<UTC time>` (nori analyzer, BM25 with the configured k1/b, optional `dense_vector`),
stores the odqa manifest in its mapping `_meta.odqa`, then atomically moves the alias NAME
onto it and deletes the indexes the alias pointed to before. A failed build deletes its
half-loaded index and leaves the alias, and so the index being served, untouched.

Loading. The build also writes `indexes/NAME/manifest.json`, a pointer with the backend,
URL, alias and TLS settings (never credentials). `load_index(NAME)` reads the pointer,
connects with credentials from the environment, reads `_meta.odqa` through the alias and
checks it as it checks a local manifest; `.retriever()` then searches the cluster:
BM25 `match`, kNN on `vector`, and hybrid by the server's RRF retriever (where the server
has it) or by odqa's own fusion (`odqa.retrieval.hybrid`).

Modules: `client` (connection, errors, retries), `schema` (the bodies sent), `meta` (the manifest
in `_meta`), `build` (create, bulk load, move the alias), `search` (retrievers and the loaded index).
`build` and `load` are the backend registry's entry points (`odqa.index.indexing`).
"""

from odqa.index.elastic.build import build_es_index as build
from odqa.index.elastic.search import load_es_index as load

__all__ = ["build", "load"]
