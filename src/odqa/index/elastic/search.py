"""Searching an Elasticsearch index: BM25 `match`, kNN on `vector`, hybrid by the server's RRF
retriever or odqa's fusion; the index's passages and aliases read lazily; `load_es_index`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from odqa.config import HybridConfig
from odqa.errors import OdqaError
from odqa.index import manifest as mf
from odqa.index.elastic import schema
from odqa.index.elastic.client import ESClient, ESConnection, RequestFailed, warn
from odqa.index.elastic.meta import BACKEND, located, read_meta
from odqa.index.index import Index
from odqa.retrieval.base import check_queries
from odqa.retrieval.hybrid import HybridRetriever
from odqa.settings import env
from odqa.types import Hit, Passage

MSEARCH_BATCH = 64


def _passage(src: dict) -> Passage:
    return Passage(str(src["id"]), src.get("title") or "", src.get("text") or "", src.get("doc_id") or "",
                   src.get("metadata") or {})


class ElasticRetriever:
    """BM25 (`kind="sparse"`) or kNN (`kind="dense"`) search on an Elasticsearch index, batched by _msearch."""

    def __init__(self, client: ESClient, index: str, kind: str = "sparse", encoder=None, num_candidates: int = 100):
        if kind == "dense" and encoder is None:
            raise OdqaError("dense Elasticsearch search needs the index's encoder")
        self.client, self.index, self.kind = client, index, kind
        self.encoder, self.num_candidates = encoder, num_candidates

    def search(self, queries: Sequence[str], k: int = 10, filters=None) -> list[list[Hit]]:
        """Top-k hits; `filters` (`odqa.retrieval.filters.Filters`) become the query's filter clauses."""
        queries = check_queries(queries)
        if self.kind == "sparse":
            return self._run([schema.sparse_query(q, k, filters) for q in queries], "sparse")
        vectors = self.encoder.encode(queries, "query")
        return self._run([schema.knn_query(v, k, self.num_candidates, filters) for v in vectors], "dense")

    def rrf(self, queries: Sequence[str], k: int, cfg: HybridConfig, filters=None) -> list[list[Hit]]:
        """Hybrid by the server's RRF retriever (BM25 match + kNN, `rank_window_size` = hybrid depth)."""
        queries = check_queries(queries)
        vectors = self.encoder.encode(queries, "query")
        return self._run([schema.rrf_query(q, v, k, cfg.depth, cfg.rrf_k, self.num_candidates, filters)
                          for q, v in zip(queries, vectors)], "hybrid")

    def _run(self, bodies: list[dict], source: str) -> list[list[Hit]]:
        out = []
        for s in range(0, len(bodies), MSEARCH_BATCH):
            for r in self.client.msearch(self.index, bodies[s:s + MSEARCH_BATCH]):
                out.append([Hit(_passage(h["_source"]), float(h.get("_score") or 0.0), rank + 1, source)
                            for rank, h in enumerate(r["hits"]["hits"])])
        return out


class ElasticHybrid(HybridRetriever):
    """Hybrid on Elasticsearch: the server's RRF retriever when `server` (method rrf), else odqa's fusion.

    `candidates()` (used by fusion sweeps) always returns both lists, fused client-side."""

    def __init__(self, sparse: ElasticRetriever, dense: ElasticRetriever, cfg: HybridConfig, server: bool,
                 strict: bool = False):
        super().__init__(sparse, dense, cfg)
        self.server, self.strict = server and cfg.method == "rrf", strict

    def search(self, queries: Sequence[str], k: int = 10, filters=None) -> list[list[Hit]]:
        if self.server:
            try:
                return self.dense.rrf(queries, k, self.cfg, filters)
            except RequestFailed as e:  # a refused retriever fails the whole _msearch (parsed up front)
                if self.strict or e.status not in (400, 403):
                    raise
                warn(f"the server refused the RRF retriever ({e.reason}); fusing on the client instead "
                     f"(set elastic.fusion: client to skip the attempt)")
                self.server = False
        return super().search(queries, k, filters)


class ESPassages:
    """An index's passages, read from Elasticsearch when needed: iteration streams them in id order,
    indexing by position loads them all once."""

    def __init__(self, client: ESClient, index: str, count: int):
        self.client, self.index, self.count = client, index, count
        self._all: list[Passage] | None = None

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Passage]:
        if self._all is not None:
            return iter(self._all)
        return (_passage(h["_source"]) for h in self.client.scan(self.index, {"match_all": {}}, schema.SOURCE_FIELDS))

    def __getitem__(self, i):
        if self._all is None:
            self._all = list(self)
        return self._all[i]


class ESAliases(Mapping):
    """Duplicate id -> kept passage id, read once from the `aliases` field of the documents that have one."""

    def __init__(self, client: ESClient, index: str):
        self.client, self.index = client, index
        self._map: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._map is None:
            self._map = {a: str(h["_source"]["id"])
                         for h in self.client.scan(self.index, {"exists": {"field": "aliases"}}, ["id", "aliases"])
                         for a in h["_source"].get("aliases", [])}
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._load()[key]

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


@dataclass
class ElasticIndex(Index):
    """An Index whose retrievers search Elasticsearch (same interface as a local index)."""
    client: Any = None
    alias: str = ""

    def analyzer(self):
        a = self.manifest["analyzer"]["name"]
        raise OdqaError(f"index '{self.name}' is analysed by Elasticsearch ({a}), not by odqa: BM25 sweeps and "
                        f"local analysis need a local index of the same corpus (`odqa index CORPUS --name "
                        f"{self.name}-local`)")

    def passage_ids(self) -> set[str]:
        return {h["_id"] for h in self.client.scan(self.alias, {"match_all": {}}, False)}

    def _es(self, key: str, default=None):
        return self.manifest.get(BACKEND, {}).get(key, default)

    @property
    def sparse(self) -> ElasticRetriever:
        return self.cached("sparse", lambda: ElasticRetriever(self.client, self.alias, "sparse"))

    def dense(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0) -> ElasticRetriever:
        enc = self.query_encoder(encoder, quantize, threads)
        key = ("dense", id(enc))
        return self.cached(key, lambda: ElasticRetriever(self.client, self.alias, "dense", enc,
                                                          self._es("num_candidates", 100)))

    def hybrid(self, cfg: HybridConfig, encoder: str | None = None) -> ElasticHybrid:
        fusion = self._es("fusion", "auto")
        server = fusion == "server" or (fusion == "auto" and cfg.method == "rrf"
                                        and schema.server_rrf_supported(self._es("server_version", "0.0"))
                                        and schema.rrf_licensed(self.client.license_type()))
        return ElasticHybrid(self.sparse, self.dense(encoder), cfg, server, strict=fusion == "server")


def _load_connection(pointer: dict) -> ESConnection:
    e = env()
    return ESConnection.resolve(url=pointer["url"], ca_certs=e.es_ca or pointer.get("ca_certs"),
                                verify=None if e.es_verify is not None else pointer.get("verify_certs", True))


def load_es_index(name: str, folder: Path, pointer: dict, connection: ESConnection | None = None) -> ElasticIndex:
    """The index behind `pointer` (indexes/NAME/manifest.json), its manifest read from `_meta` and checked."""
    where = pointer.get(BACKEND) or {}
    if not where.get("url") or not where.get("alias"):
        raise OdqaError(f"{folder / mf.MANIFEST}: Elasticsearch pointer without url/alias; rebuild with "
                        f"`odqa index CORPUS --backend elasticsearch --name {name}`")
    client = ESClient(connection or _load_connection(where))
    alias = where["alias"]
    targets = client.alias_targets(alias)
    if not targets:
        raise OdqaError(f"index '{name}' is alias '{alias}' on Elasticsearch at {client.url}, which does not exist "
                        f"there: rebuild it with `odqa index CORPUS --backend elasticsearch --name {name}`")
    manifest = read_meta(client, targets[0])
    if manifest is None:
        raise OdqaError(f"index '{targets[0]}' behind alias '{alias}' on {client.url} has no odqa manifest in its "
                        f"_meta (not built by odqa?): rebuild with `odqa index CORPUS --backend elasticsearch "
                        f"--name {name} --force`")
    manifest = mf.migrate(manifest, name, f"{client.url} index '{targets[0]}'")
    version = client.version()
    stale = mf.staleness(manifest, lambda _analyzer: f"elasticsearch-{version}")
    manifest = located(manifest, client.url, targets[0])
    count = int(manifest.get("corpus", {}).get("passages", 0))
    return ElasticIndex(name, folder, manifest, ESPassages(client, alias, count), ESAliases(client, alias), stale,
                        client=client, alias=alias)


