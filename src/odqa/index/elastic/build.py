"""Building an index on Elasticsearch: create `NAME-<time>`, load the passages in bulk (the client's
`streaming_bulk` retries rejected items with backoff), store the manifest, move alias NAME onto it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from odqa.text.normalize import NORMALIZATION
from odqa.atomic import AtomicFolder
from odqa.config import DenseConfig, IndexConfig, with_changes
from odqa.corpus import file_sha256, load_corpus
from odqa.errors import OdqaError
from odqa.index import manifest as mf
from odqa.index import store
from odqa.index.elastic import schema
from odqa.index.elastic.client import (MAX_BACKOFF, RETRY_STATUS, ESClient, ESConnection, RequestFailed,
                                       _body_reason, warn)
from odqa.index.elastic.meta import BACKEND, located, read_meta, write_meta
from odqa.progress import bar

SEARCH_KEYS = ("num_candidates", "fusion")   # search-time settings: changed in place, no rebuild
LAYOUT_KEYS = ("shards", "replicas")         # a change rebuilds the index


class BulkFailed(OdqaError):
    def __init__(self, reason: str, indexed: int):
        super().__init__(reason)
        self.indexed = indexed


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
    spec = {"name": "nori" if nori else "cjk", "version": f"elasticsearch-{version}",
            "normalization": NORMALIZATION}          # content is sent normalised (`schema.document`)
    if nori:
        spec.update(pos=list(cfg.analyzer.pos), stoptags=schema.stoptags(cfg.analyzer.pos),
                    decompound_mode=cfg.elastic.decompound_mode, user_dictionary=user_dict)
    return spec


def _es_settings(cfg: IndexConfig) -> dict:
    e = cfg.elastic
    return {"shards": e.shards, "replicas": e.replicas, "num_candidates": e.num_candidates, "fusion": e.fusion}


def _check_config(cfg: IndexConfig) -> None:
    if cfg.bm25.method in ("bm25l", "bm25+"):
        raise OdqaError(f"Elasticsearch scores with Lucene's BM25; `method` {cfg.bm25.method} needs the local backend")
    # the rest (fusion, bulk size, retries, candidates) is checked when the config is loaded (odqa.config)



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
                            f"would replace it: pass `force` or choose another `name`")


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
                   quiet: bool = False, connection: ESConnection | None = None,
                   device: str = "auto", shards=None) -> mf.BuildResult:
    """Build index NAME on Elasticsearch behind alias NAME (see the module docstring). With `shards`
    (`odqa.index.shards.ShardSource`) the passage vectors come from dense shards encoded beforehand
    (one vector per passage: window stride 0), checked against this corpus and these settings."""
    schema.check_name(name)
    folder = store.index_dir(name, root)
    _check_config(cfg)
    _refuse_local(folder, name, force)
    conn = connection or ESConnection.resolve(timeout=cfg.elastic.timeout)
    client = ESClient(conn, cfg.elastic.retries, cfg.elastic.backoff)
    version = client.version()
    nori = client.has_nori()
    if not nori:
        if not cfg.elastic.allow_fallback:
            raise OdqaError(f"the Elasticsearch cluster at {conn.url} has no analysis-nori plugin: install it on "
                            f"every node (bin/elasticsearch-plugin install analysis-nori) and restart, or pass "
                            f"`allow_fallback` to use the cjk bigram analyzer")
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
                        f"or newer (build without `dense`, or upgrade the cluster)")
    t0 = time.perf_counter()
    corpus_path = Path(corpus_path)
    corpus = load_corpus(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                         cfg.corpus.dedup, cfg.corpus.encoding, cfg.corpus.fields())
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
            write_meta(client, targets[0], old)
        _write_pointer(folder, name, conn, old)
        return mf.BuildResult("up-to-date", folder, located(old, conn.url, targets[0]))

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
    return mf.BuildResult("rebuilt" if targets else "built", folder, located(manifest, conn.url), reasons)


class StoredVectors:
    """Merged shard vectors standing in for the encoder while the passages are loaded (`_bulk_load`)."""

    def __init__(self, vectors, stats: dict):
        self.vectors, self.stats, self.dim = vectors, stats, int(vectors.shape[1])


def _stored_vectors(shards, corpus, cfg: IndexConfig, settings: dict, name: str, quiet: bool) -> StoredVectors | None:
    if not settings["dense"]:
        raise OdqaError("merging shards builds the dense part: add `dense`")
    try:
        found = shards.load(corpus, cfg, settings, name)
    except OdqaError as e:
        if "window_stride differs" in str(e):
            raise type(e)(f"{e} (Elasticsearch keeps one vector per passage: encode the shards with "
                          f"`window_stride` 0)") from None
        raise
    vectors, _ = found.vectors(quiet)
    return StoredVectors(vectors, found.stats())


def _served(client: ESClient, name: str) -> tuple[list[str], dict | None]:
    """(indexes behind alias NAME, the manifest of the first); refuses names odqa does not manage."""
    targets = client.alias_targets(name)
    if not targets and client.call(f"check for index '{name}'", client.es.indices.exists, index=name):
        raise OdqaError(f"'{name}' on {client.url} is an index, not an alias odqa manages: choose another `name` "
                        f"or delete that index")
    metas = [read_meta(client, t) for t in targets]
    if None in metas:
        raise OdqaError(f"alias '{name}' on {client.url} points to '{targets[metas.index(None)]}', which odqa did "
                        f"not build (no odqa manifest in its _meta): choose another `name`")
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
        write_meta(client, concrete, manifest)
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
    """Send the passages in chunks of `elastic.bulk_size` (encoding each chunk when dense) through the client's
    `streaming_bulk`, which retries the items answered 429/5xx (and whole requests failing so) with backoff.
    Returns (passages indexed, dense stats); raises BulkFailed with the count indexed so far."""
    from elasticsearch.helpers import streaming_bulk
    size, done = cfg.elastic.bulk_size, 0
    actions, stats = _documents(index, corpus, cfg, encoder)
    what = f"bulk index into '{index}'"
    with bar(len(corpus.passages), "indexing into Elasticsearch", "passage", quiet) as pb:
        try:
            with client.errors(what):
                for ok, item in streaming_bulk(client.bulk_client(), actions, chunk_size=size, raise_on_error=False,
                                               max_retries=client.retries, initial_backoff=client.backoff,
                                               max_backoff=MAX_BACKOFF, retry_on_status=tuple(RETRY_STATUS),
                                               refresh=False):
                    if not ok:
                        raise BulkFailed(_rejected(client, next(iter(item.values()))), done)
                    done += 1
                    pb.update(1)
        except RequestFailed as e:
            if e.status not in RETRY_STATUS:
                raise BulkFailed(str(e), done) from None
            raise BulkFailed(f"Elasticsearch at {client.url} kept failing a bulk request after {client.retries} "
                             f"retries (last: HTTP {e.status} {e.reason})", done) from None
        except BulkFailed:
            raise
        except OdqaError as e:
            raise BulkFailed(str(e), done) from None
    return done, stats


def _rejected(client: ESClient, res: dict) -> str:
    """Why a bulk item failed for good: rejected, or still answered 429/5xx when the retries were used up."""
    status = int(res.get("status", 0))
    if status in RETRY_STATUS:
        return (f"Elasticsearch at {client.url} kept failing a bulk request after {client.retries} retries "
                f"(last: passage '{res.get('_id')}' answered HTTP {status} {_body_reason(res)})")
    return f"Elasticsearch at {client.url} rejected passage '{res.get('_id')}' (HTTP {status} {_body_reason(res)})"


def _documents(index: str, corpus, cfg: IndexConfig, encoder) -> tuple[Iterator[dict], dict]:
    """(the bulk actions of every passage, encoded a chunk at a time as they are sent; the dense stats, filled in
    once the actions are used up)."""
    from odqa.retrieval.sparse import passage_text
    dups: dict[str, list[str]] = {}
    for original, kept in corpus.aliases.items():
        dups.setdefault(kept, []).append(original)
    size, passages = cfg.elastic.bulk_size, corpus.passages
    stored = encoder if isinstance(encoder, StoredVectors) else None
    stats: dict = {}

    def actions() -> Iterator[dict]:
        enc_secs = 0.0
        for s in range(0, len(passages), size):
            chunk = passages[s:s + size]
            vectors = None
            if stored is not None:
                vectors = stored.vectors[s:s + size]
            elif encoder is not None:
                t = time.perf_counter()
                vectors = encoder.encode([passage_text(p, cfg.include_title) for p in chunk], "passage")
                enc_secs += time.perf_counter() - t
            for i, p in enumerate(chunk):
                yield {"_index": index, "_id": p.id,
                       "_source": schema.document(p, cfg.include_title, dups.get(p.id, ()),
                                                  None if vectors is None else vectors[i])}
        if stored is not None:
            stats.update(stored.stats)
        elif encoder is not None:
            stats.update({"dim": encoder.dim, "encode_seconds": round(enc_secs, 2),
                          "passages_per_second": round(len(passages) / enc_secs, 1) if enc_secs else None})
    return actions(), stats
