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
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from odqa.atomic import AtomicFolder
from odqa.config import DenseConfig, HybridConfig, IndexConfig, with_changes
from odqa.corpus import file_sha256, load_corpus
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.retrieval import es_schema as schema
from odqa.retrieval import manifest as mf
from odqa.retrieval import store
from odqa.retrieval.base import check_queries
from odqa.retrieval.es_client import (RETRY_STATUS, ESClient, ESConnection, RequestFailed, Retried, Retryable,
                                      _body_reason, warn)
from odqa.retrieval.hybrid import HybridRetriever
from odqa.retrieval.index import Index
from odqa.types import Hit, Passage

BACKEND = "elasticsearch"
MSEARCH_BATCH = 64
SEARCH_KEYS = ("num_candidates", "fusion")   # search-time settings: changed in place, no rebuild
LAYOUT_KEYS = ("shards", "replicas")         # a change rebuilds the index


class BulkFailed(OdqaError):
    def __init__(self, reason: str, indexed: int):
        super().__init__(reason)
        self.indexed = indexed


def _passage(src: dict) -> Passage:
    return Passage(str(src["id"]), src.get("title") or "", src.get("text") or "", src.get("doc_id") or "")


# ================================================================== build
def _user_dictionary(cfg) -> tuple[list[str] | None, dict | None]:
    """(inline rules, manifest record) for elastic.user_dictionary / user_dictionary_path."""
    e = cfg.elastic
    if e.user_dictionary:
        path = Path(e.user_dictionary)
        if not path.is_file():
            raise OdqaError(f"{path}: nori user dictionary not found (elastic.user_dictionary)")
        rules = schema.user_rules(path.read_text(encoding="utf-8"))
        return rules, {"file": str(path.resolve()), "sha256": file_sha256(path), "entries": len(rules)}
    if e.user_dictionary_path:
        return None, {"node_path": e.user_dictionary_path}
    return None, None


def _analyzer_spec(nori: bool, version: str, cfg: IndexConfig, user_dict: dict | None) -> dict:
    spec = {"name": "nori" if nori else "cjk", "version": f"elasticsearch-{version}"}
    if nori:
        spec.update(pos=list(cfg.analyzer.pos), stoptags=schema.stoptags(cfg.analyzer.pos),
                    decompound_mode=cfg.elastic.decompound_mode, user_dictionary=user_dict)
    return spec


def _es_settings(cfg: IndexConfig) -> dict:
    e = cfg.elastic
    return {"shards": e.shards, "replicas": e.replicas, "num_candidates": e.num_candidates, "fusion": e.fusion}


def _check_config(cfg: IndexConfig) -> None:
    if cfg.bm25.method in ("bm25l", "bm25+"):
        raise OdqaError(f"Elasticsearch scores with Lucene's BM25; --method {cfg.bm25.method} needs the local backend")
    # the rest (fusion, bulk size, retries, candidates) is checked when the config is loaded (odqa.config)


def _read_meta(client: ESClient, index: str) -> dict | None:
    body = client.call(f"read the mapping of '{index}'", client.es.indices.get_mapping, index=index).body
    mappings = (body.get(index) or next(iter(body.values()), {})).get("mappings", {})
    meta = (mappings.get("_meta") or {}).get("odqa")
    return meta if isinstance(meta, dict) and meta.get("status") != "building" else None


def _located(manifest: dict, url: str, index: str | None = None) -> dict:
    """The manifest as odqa shows it: `_meta.odqa` plus where it was read (the URL is never stored in _meta)."""
    where = {**manifest.get(BACKEND, {}), "url": url}
    if index:
        where["index"] = index
    return {**manifest, BACKEND: where}


def _write_meta(client: ESClient, index: str, manifest: dict) -> None:
    client.call(f"store the manifest in '{index}'", client.es.indices.put_mapping, index=index,
                meta={"odqa": manifest})


def _drop(client: ESClient, index: str) -> bool:
    try:
        client.call(f"delete index '{index}'", client.es.indices.delete, index=index)
        return True
    except OdqaError:
        return False


def _write_pointer(folder: Path, name: str, conn: ESConnection, manifest: dict) -> None:
    pointer = {"format_version": mf.FORMAT_VERSION, "backend": BACKEND, "name": name,
               "odqa_version": manifest.get("odqa_version"), "built_at": manifest.get("built_at"),
               "elasticsearch": {**conn.public(), "alias": name, "index": manifest[BACKEND]["index"]}}
    with AtomicFolder(folder) as tmp:
        mf.write_json(tmp / mf.MANIFEST, pointer)


def _refuse_local(folder: Path, name: str, force: bool) -> None:
    if mf.manifest_path(folder).exists() and not force:
        try:
            m = mf.read_manifest(folder, name, folder.parent)
        except OdqaError:
            return
        if m.get("backend") != BACKEND:
            raise OdqaError(f"index '{name}' in {folder.parent}/ is a local index; building it on Elasticsearch "
                            f"would replace it: pass --force or choose another --name")


def _build_reasons(old: dict, corpus_sha: str, settings: dict, cfg: IndexConfig) -> list[str]:
    try:
        old = mf.migrate(old, "", "")
    except OdqaError:
        return ["format version"]
    reasons = mf.same_build(old, corpus_sha, {k: v for k, v in settings.items() if k != "dense"})
    if not mf.same_dense(old.get("dense"), settings["dense"]) and (old.get("dense") or settings["dense"]):
        reasons.append("dense")
    have = old.get(BACKEND) or {}
    if any(have.get(k) != v for k, v in _es_settings(cfg).items() if k in LAYOUT_KEYS):
        reasons.append("shards/replicas")
    return reasons


def build_es_index(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
                   quiet: bool = False, connection: ESConnection | None = None, sleep=time.sleep,
                   device: str = "auto", shards=None) -> mf.BuildResult:
    """Build index NAME on Elasticsearch behind alias NAME (see the module docstring). With `shards`
    (`odqa.retrieval.shards.ShardSource`) the passage vectors come from dense shards encoded beforehand
    (one vector per passage: window stride 0), checked against this corpus and these settings."""
    schema.check_name(name)
    folder = store.index_dir(name, root)
    _check_config(cfg)
    _refuse_local(folder, name, force)
    conn = connection or ESConnection.resolve(timeout=cfg.elastic.timeout)
    client = ESClient(conn, cfg.elastic.retries, cfg.elastic.backoff, sleep)
    version = client.version()
    nori = client.has_nori()
    if not nori:
        if not cfg.elastic.allow_fallback:
            raise OdqaError(f"the Elasticsearch cluster at {conn.url} has no analysis-nori plugin: install it on "
                            f"every node (bin/elasticsearch-plugin install analysis-nori) and restart, or pass "
                            f"--allow-fallback to use the cjk bigram analyzer")
        warn(f"the cluster at {conn.url} has no analysis-nori plugin: using the cjk bigram analyzer (--allow-fallback)")
    rules, user_dict = _user_dictionary(cfg) if nori else (None, None)
    targets, old = _served(client, name)
    old_dense = {k: v for k, v in ((old or {}).get("dense") or {}).items() if k != "index"}  # dense_vector here
    cfg = mf.keep_dense(cfg, {"dense": old_dense})        # no --dense / --no-dense: keep what it has
    if cfg.dense.enabled and cfg.dense.window_stride:
        if cfg.dense.window_stride != DenseConfig().window_stride:   # asked for explicitly: say it is not used
            warn(f"Elasticsearch keeps one vector per passage: passages longer than dense.max_length "
                 f"({cfg.dense.max_length} tokens) are cut there, dense.window_stride is not used (split long "
                 f"documents with corpus.chunk_size instead)")
        cfg = with_changes(cfg, dense=with_changes(cfg.dense, window_stride=0))
    if cfg.dense.enabled and not schema.at_least(version, 8, 4):
        raise OdqaError(f"Elasticsearch at {conn.url} is version {version}: kNN search of dense vectors needs 8.4 "
                        f"or newer (build without --dense, or upgrade the cluster)")
    t0 = time.perf_counter()
    corpus_path = Path(corpus_path)
    corpus = load_corpus(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                         cfg.corpus.dedup, cfg.corpus.encoding)
    settings = mf.build_settings(cfg, _analyzer_spec(nori, version, cfg, user_dict))
    settings["sparse"] = {**settings["sparse"], "backend": BACKEND, "method": "lucene"}
    if settings["dense"]:
        settings["dense"] = {**settings["dense"], "index": "dense_vector"}
    stored = _stored_vectors(shards, corpus, cfg, settings, name, quiet) if shards is not None else None

    reasons = _build_reasons(old, corpus.sha256, settings, cfg) if old is not None else []
    if old is not None and not reasons and not force:
        old = mf.migrate(old, name, f"{conn.url} index '{targets[0]}'")
        search = {k: v for k, v in _es_settings(cfg).items() if k in SEARCH_KEYS}
        hybrid = mf.hybrid_settings(cfg.hybrid)
        if any(old.get(BACKEND, {}).get(k) != v for k, v in search.items()) or old.get("hybrid") != hybrid:
            old = {**old, "hybrid": hybrid, BACKEND: {**old.get(BACKEND, {}), **search}}
            _write_meta(client, targets[0], old)
        _write_pointer(folder, name, conn, old)
        return mf.BuildResult("up-to-date", folder, _located(old, conn.url, targets[0]))

    encoder = stored
    if settings["dense"] and stored is None:
        from odqa.retrieval.dense import DenseEncoder
        d = cfg.dense
        encoder = DenseEncoder(d.encoder, d.max_length, d.batch_size, d.quantize, d.threads, device=device)
    analysis = schema.analysis(nori, cfg.elastic.decompound_mode, cfg.analyzer.pos, rules,
                               cfg.elastic.user_dictionary_path if nori else "")
    manifest = _build_new(client, name, targets, corpus, corpus_path, cfg, settings, analysis, encoder, version,
                          quiet, t0)
    for t in targets:
        if not _drop(client, t):
            warn(f"could not delete the previous index '{t}' on {conn.url}; delete it by hand")
    _write_pointer(folder, name, conn, manifest)
    return mf.BuildResult("rebuilt" if targets else "built", folder, _located(manifest, conn.url), reasons)


class StoredVectors:
    """Merged shard vectors standing in for the encoder while the passages are loaded (`_bulk_load`)."""

    def __init__(self, vectors, stats: dict):
        self.vectors, self.stats, self.dim = vectors, stats, int(vectors.shape[1])


def _stored_vectors(shards, corpus, cfg: IndexConfig, settings: dict, name: str, quiet: bool) -> StoredVectors | None:
    if not settings["dense"]:
        raise OdqaError("merging shards builds the dense part: add --dense")
    try:
        found = shards.load(corpus, cfg, settings, name)
    except OdqaError as e:
        if "window_stride differs" in str(e):
            raise type(e)(f"{e} (Elasticsearch keeps one vector per passage: encode the shards with "
                          f"--window-stride 0)") from None
        raise
    vectors, _ = found.vectors(quiet)
    return StoredVectors(vectors, found.stats())


def _served(client: ESClient, name: str) -> tuple[list[str], dict | None]:
    """(indexes behind alias NAME, the manifest of the first); refuses names odqa does not manage."""
    targets = client.alias_targets(name)
    if not targets and client.call(f"check for index '{name}'", client.es.indices.exists, index=name):
        raise OdqaError(f"'{name}' on {client.url} is an index, not an alias odqa manages: choose another --name "
                        f"or delete that index")
    metas = [_read_meta(client, t) for t in targets]
    if None in metas:
        raise OdqaError(f"alias '{name}' on {client.url} points to '{targets[metas.index(None)]}', which odqa did "
                        f"not build (no odqa manifest in its _meta): choose another --name")
    return targets, (metas[0] if metas else None)


def _build_new(client: ESClient, name: str, targets: list[str], corpus, corpus_path: Path, cfg: IndexConfig,
               settings: dict, analysis: dict, encoder, version: str, quiet: bool, t0: float) -> dict:
    """Create `NAME-<time>`, load it, store its manifest and move alias NAME onto it. On any failure the new
    index is deleted and the alias left as it was. Returns the manifest."""
    concrete = f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{int(time.time() * 1000) % 1000:03d}"
    body = schema.index_body(analysis, cfg.bm25.k1, cfg.bm25.b, encoder.dim if encoder else None,
                             cfg.elastic.shards, cfg.elastic.replicas, {"odqa": {"name": name, "status": "building"}})
    client.call(f"create index '{concrete}'", client.es.indices.create, index=concrete, **body)
    total, done = len(corpus.passages), 0
    try:
        try:
            done, dense_stats = _bulk_load(client, concrete, corpus, cfg, encoder, quiet)
        except BulkFailed as e:
            done = e.indexed
            raise
        client.call(f"turn refresh on for '{concrete}'", client.es.indices.put_settings, index=concrete,
                    settings={"index": {"refresh_interval": None}})
        client.call(f"refresh index '{concrete}'", client.es.indices.refresh, index=concrete)
        count = client.call(f"count documents in '{concrete}'", client.es.count, index=concrete)["count"]
        if count != total:
            raise OdqaError(f"Elasticsearch holds {count} documents in '{concrete}', {total} were sent")
        manifest = mf.new_manifest(name, mf.corpus_record(corpus, corpus_path, settings["corpus"]),
                                   settings["analyzer"], settings["sparse"], time.perf_counter() - t0, BACKEND,
                                   mf.hybrid_settings(cfg.hybrid))
        manifest["dense"] = {**settings["dense"], **dense_stats} if settings["dense"] else None
        manifest[BACKEND] = {"index": concrete, "alias": name, "server_version": version, **_es_settings(cfg)}
        _write_meta(client, concrete, manifest)
        actions = [{"add": {"index": concrete, "alias": name}}]
        actions += [{"remove": {"index": t, "alias": name}} for t in targets]
        client.call(f"move alias '{name}' to '{concrete}'", client.es.indices.update_aliases, actions=actions)
        return manifest
    except BaseException as e:
        dropped = _drop(client, concrete)
        if not isinstance(e, OdqaError):
            raise
        serving = f"still serving '{targets[0]}'" if targets else "not created"
        partial = "deleted" if dropped else f"left behind: delete it with DELETE /{concrete}"
        raise OdqaError(f"{e}; stopped with {done} of {total} passages indexed; alias '{name}' unchanged "
                        f"({serving}); partial index '{concrete}' {partial}") from None


def _bulk_load(client: ESClient, index: str, corpus, cfg: IndexConfig, encoder, quiet: bool) -> tuple[int, dict]:
    """Send the passages in chunks of `elastic.bulk_size` (encoding each chunk when dense). Returns
    (passages indexed, dense stats); raises BulkFailed with the count indexed so far."""
    from odqa.retrieval.sparse import passage_text
    dups: dict[str, list[str]] = {}
    for original, kept in corpus.aliases.items():
        dups.setdefault(kept, []).append(original)
    size, done, enc_secs = cfg.elastic.bulk_size, 0, 0.0
    passages = corpus.passages
    stored = encoder if isinstance(encoder, StoredVectors) else None
    with bar(len(passages), "indexing into Elasticsearch", "passage", quiet) as pb:
        for s in range(0, len(passages), size):
            chunk = passages[s:s + size]
            vectors = None
            if stored is not None:
                vectors = stored.vectors[s:s + size]
            elif encoder is not None:
                t = time.perf_counter()
                vectors = encoder.encode([passage_text(p, cfg.include_title) for p in chunk], "passage")
                enc_secs += time.perf_counter() - t
            docs = [(p.id, schema.document(p, cfg.include_title, dups.get(p.id, ()),
                                           None if vectors is None else vectors[i])) for i, p in enumerate(chunk)]
            try:
                done += _bulk_chunk(client, index, docs)
            except BulkFailed as e:
                raise BulkFailed(str(e), done + e.indexed) from None
            except OdqaError as e:
                raise BulkFailed(str(e), done) from None
            pb.update(len(chunk))
    stats = {}
    if stored is not None:
        stats = stored.stats
    elif encoder is not None:
        stats = {"dim": encoder.dim, "encode_seconds": round(enc_secs, 2),
                 "passages_per_second": round(len(passages) / enc_secs, 1) if enc_secs else None}
    return done, stats


def _bulk_chunk(client: ESClient, index: str, docs: list[tuple[str, dict]]) -> int:
    """Index one chunk; items answered 429/5xx (and whole requests failing so) are retried with backoff."""
    state = {"pending": docs, "indexed": 0}

    def attempt() -> None:
        ops: list[dict] = []
        for pid, doc in state["pending"]:
            ops += [{"index": {"_index": index, "_id": pid}}, doc]
        resp = client.es.bulk(operations=ops, refresh=False).body
        if not resp.get("errors"):
            state["indexed"] += len(state["pending"])
            state["pending"] = []
            return
        retry, last = [], ""
        for (pid, doc), item in zip(state["pending"], resp["items"]):
            res = next(iter(item.values()))
            status = int(res.get("status", 0))
            if status < 300:
                state["indexed"] += 1
            elif status in RETRY_STATUS:
                retry.append((pid, doc))
                last = f"HTTP {status} {_body_reason(res)}"
            else:
                raise BulkFailed(f"Elasticsearch at {client.url} rejected passage '{pid}' "
                                 f"(HTTP {status} {_body_reason(res)})", state["indexed"])
        state["pending"] = retry
        if retry:
            raise Retryable(f"{len(retry)} passages answered {last}")

    try:
        client.retrying(f"bulk index into '{index}'", attempt)
    except Retried as e:
        raise BulkFailed(f"Elasticsearch at {client.url} kept failing a bulk request after {client.retries} "
                         f"retries (last: {e.reason})", state["indexed"]) from None
    except BulkFailed:
        raise
    except OdqaError as e:
        raise BulkFailed(str(e), state["indexed"]) from None
    return state["indexed"]


# ================================================================== search
class ElasticRetriever:
    """BM25 (`kind="sparse"`) or kNN (`kind="dense"`) search on an Elasticsearch index, batched by _msearch."""

    def __init__(self, client: ESClient, index: str, kind: str = "sparse", encoder=None, num_candidates: int = 100):
        if kind == "dense" and encoder is None:
            raise OdqaError("dense Elasticsearch search needs the index's encoder")
        self.client, self.index, self.kind = client, index, kind
        self.encoder, self.num_candidates = encoder, num_candidates

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        queries = check_queries(queries)
        if self.kind == "sparse":
            return self._run([schema.sparse_query(q, k) for q in queries], "sparse")
        vectors = self.encoder.encode(queries, "query")
        return self._run([schema.knn_query(v, k, self.num_candidates) for v in vectors], "dense")

    def rrf(self, queries: Sequence[str], k: int, cfg: HybridConfig) -> list[list[Hit]]:
        """Hybrid by the server's RRF retriever (BM25 match + kNN, `rank_window_size` = hybrid depth)."""
        queries = check_queries(queries)
        vectors = self.encoder.encode(queries, "query")
        return self._run([schema.rrf_query(q, v, k, cfg.depth, cfg.rrf_k, self.num_candidates)
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

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if self.server:
            try:
                return self.dense.rrf(queries, k, self.cfg)
            except RequestFailed as e:  # a refused retriever fails the whole _msearch (parsed up front)
                if self.strict or e.status not in (400, 403):
                    raise
                warn(f"the server refused the RRF retriever ({e.reason}); fusing on the client instead "
                     f"(set elastic.fusion: client to skip the attempt)")
                self.server = False
        return super().search(queries, k)


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
                        f"local analysis need a local index of the same corpus (odqa index CORPUS --name "
                        f"{self.name}-local)")

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
    env_verify = os.environ.get("ODQA_ES_VERIFY")
    return ESConnection.resolve(url=pointer["url"], ca_certs=os.environ.get("ODQA_ES_CA") or pointer.get("ca_certs"),
                                verify=None if env_verify is not None else pointer.get("verify_certs", True))


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
    manifest = _read_meta(client, targets[0])
    if manifest is None:
        raise OdqaError(f"index '{targets[0]}' behind alias '{alias}' on {client.url} has no odqa manifest in its "
                        f"_meta (not built by odqa?): rebuild with `odqa index CORPUS --backend elasticsearch "
                        f"--name {name} --force`")
    manifest = mf.migrate(manifest, name, f"{client.url} index '{targets[0]}'")
    version = client.version()
    stale = mf.staleness(manifest, lambda _analyzer: f"elasticsearch-{version}")
    manifest = _located(manifest, client.url, targets[0])
    count = int(manifest.get("corpus", {}).get("passages", 0))
    return ElasticIndex(name, folder, manifest, ESPassages(client, alias, count), ESAliases(client, alias), stale,
                        client=client, alias=alias)


# the backend registry's entry points (odqa.retrieval.indexing)
build = build_es_index
load = load_es_index
