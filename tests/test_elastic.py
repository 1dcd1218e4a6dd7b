"""Elasticsearch backend against a fake transport: the real `elasticsearch` client talks to a small
in-memory cluster (FakeES) that records every request, so these tests check the exact bodies odqa
sends, its retries and alias moves, and its error lines, with no server."""

import json
import sys
import zlib
from urllib.parse import unquote

import numpy as np
import pytest

pytest.importorskip("elasticsearch")
from elastic_transport import ApiResponseMeta, BaseNode, HttpHeaders  # noqa: E402
from elastic_transport import ConnectionError as TransportConnectionError  # noqa: E402
from elastic_transport._node import NodeApiResponse  # noqa: E402

from odqa.config import HybridConfig, IndexConfig, apply_overrides  # noqa: E402
from odqa.corpus import load_questions  # noqa: E402
from odqa.errors import OdqaError  # noqa: E402
from odqa.index.elastic import schema as es_schema  # noqa: E402
from odqa.index.elastic.client import ESConnection, es_module  # noqa: E402
from odqa.evaluation.retrieval import Judge, evaluate  # noqa: E402
from odqa.retrieval.hybrid import fuse  # noqa: E402
from odqa.index.indexing import build_index, load_index  # noqa: E402

URL = "http://es.test:9200"


def _err(status, typ, reason):
    return status, {"error": {"root_cause": [{"type": typ, "reason": reason}], "type": typ, "reason": reason},
                    "status": status}


def _bigrams(text):
    t = "".join(text.split())
    return {t[i:i + 2] for i in range(len(t) - 1)}


class FakeES:
    """In-memory stand-in for a cluster: indexes, aliases, bulk, _msearch (bigram 'BM25', cosine kNN, RRF)."""

    def __init__(self, version="8.15.0", nori=True, rrf=True, license="enterprise"):
        self.version, self.nori, self.rrf, self.license = version, nori, rrf, license
        self.indices: dict[str, dict] = {}
        self.aliases: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, object]] = []
        self.down = False
        self.api_key = None          # when set, requests must carry it (else 401)
        self.fault = None            # fn(method, path, body) -> (status, body) | None
        self.item_fault = None       # fn(doc_id) -> status | None, for bulk items

    # ------------------------------------------------------------ plumbing
    def connection(self, **kw):
        server = self

        class FakeNode(BaseNode):
            def perform_request(self, method, target, body=None, headers=None, request_timeout=None):
                status, data = server.handle(method, target, body, headers or {})
                hdrs = HttpHeaders({"content-type": "application/json", "x-elastic-product": "Elasticsearch"})
                raw = b"" if method == "HEAD" else json.dumps(data).encode()
                return NodeApiResponse(ApiResponseMeta(status, "1.1", hdrs, 0.0, self.config), raw)

        return ESConnection(URL, node_class=FakeNode, **kw)

    def sent(self, method, path_end):
        return [b for m, p, b in self.requests if m == method and p.endswith(path_end)]

    def handle(self, method, target, body, headers):
        path = unquote(target.split("?")[0])
        if body and "ndjson" in headers.get("content-type", ""):
            data = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        else:
            data = json.loads(body) if body else None
        self.requests.append((method, path, data))
        if self.down:
            raise TransportConnectionError("HTTPConnection(host='es.test', port=9200): Failed to establish a new "
                                           "connection: [Errno 111] Connection refused")
        if self.api_key and headers.get("authorization") != f"ApiKey {self.api_key}":
            return _err(401, "security_exception", "unable to authenticate with provided credentials")
        if self.fault:
            out = self.fault(method, path, data)
            if out is not None:
                return out
        return self.route(method, [p for p in path.split("/") if p], data)

    def resolve(self, name):
        if name in self.aliases:
            return self.aliases[name]
        if name in self.indices:
            return [name]
        return None

    def route(self, method, parts, data):
        if not parts:
            return 200, {"version": {"number": self.version}, "tagline": "You Know, for Search"}
        if parts == ["_analyze"]:
            if not self.nori:
                return _err(400, "illegal_argument_exception",
                            "Unknown tokenizer type [nori_tokenizer] for [_anonymous_tokenizer]")
            return 200, {"tokens": [{"token": "한국어"}]}
        if parts == ["_license"]:
            return 200, {"license": {"type": self.license, "status": "active"}}
        if parts == ["_aliases"]:
            return self.update_aliases(data["actions"])
        if parts[0] == "_alias":
            if parts[1] not in self.aliases:
                return 404, {"error": f"alias [{parts[1]}] missing", "status": 404}
            return 200, {i: {"aliases": {parts[1]: {}}} for i in self.aliases[parts[1]]}
        if parts[-1] == "_bulk":
            return self.bulk(data)
        name, op = parts[0], parts[1] if len(parts) > 1 else None
        if op is None:
            if method == "HEAD":
                return (200 if name in self.indices else 404), None
            if method == "PUT":
                if name in self.indices:
                    return _err(400, "resource_already_exists_exception", f"index [{name}] already exists")
                self.indices[name] = {"create": data, "docs": {}, "meta": data["mappings"].get("_meta", {})}
                return 200, {"acknowledged": True, "index": name}
            if method == "DELETE":
                if self.indices.pop(name, None) is None:
                    return _err(404, "index_not_found_exception", f"no such index [{name}]")
                return 200, {"acknowledged": True}
        targets = self.resolve(name)
        if targets is None:
            return _err(404, "index_not_found_exception", f"no such index [{name}]")
        if op == "_mapping":
            if method == "PUT":
                self.indices[targets[0]]["meta"] = data["_meta"]
                return 200, {"acknowledged": True}
            return 200, {t: {"mappings": {"_meta": self.indices[t]["meta"]}} for t in targets}
        if op in ("_settings", "_refresh"):
            return 200, {"acknowledged": True}
        if op == "_count":
            return 200, {"count": sum(len(self.indices[t]["docs"]) for t in targets)}
        if op == "_msearch":
            if any("retriever" in b for b in data[1::2]):  # parsed up front: a refusal fails the whole request
                if not self.rrf:
                    return _err(400, "parsing_exception", "unknown retriever [rrf]")
                if self.license not in ("enterprise", "trial"):
                    return _err(403, "security_exception",
                                "current license is non-compliant for [Reciprocal Rank Fusion (RRF)]")
            docs = {k: v for t in targets for k, v in self.indices[t]["docs"].items()}
            return 200, {"responses": [self.search(docs, b) for b in data[1::2]]}
        raise AssertionError(f"unexpected request {method} /{'/'.join(parts)}")

    def update_aliases(self, actions):
        new = {a: list(v) for a, v in self.aliases.items()}
        for act in actions:
            (kind, spec), = act.items()
            if spec["index"] not in self.indices:
                return _err(404, "index_not_found_exception", f"no such index [{spec['index']}]")
            lst = new.setdefault(spec["alias"], [])
            if kind == "add":
                lst.append(spec["index"])
            elif spec["index"] in lst:
                lst.remove(spec["index"])
        self.aliases = {a: v for a, v in new.items() if v}
        return 200, {"acknowledged": True}

    def bulk(self, data):
        items, errors = [], False
        for action, doc in zip(data[::2], data[1::2]):
            meta = action["index"]
            status = (self.item_fault(meta["_id"]) if self.item_fault else None) or 201
            if status < 300:
                self.indices[meta["_index"]]["docs"][meta["_id"]] = doc
                items.append({"index": {"_id": meta["_id"], "status": status}})
            else:
                errors = True
                items.append({"index": {"_id": meta["_id"], "status": status,
                                        "error": {"type": "es_rejected_execution_exception" if status == 429
                                                  else "mapper_parsing_exception", "reason": "fake"}}})
        return 200, {"errors": errors, "items": items}

    # ------------------------------------------------------------ search
    def rank(self, docs, spec):
        if "knn" in spec or "field" in spec:
            knn = spec.get("knn", spec)
            q = np.array(knn["query_vector"])
            scored = [(float(np.dot(q, d["vector"]) / (np.linalg.norm(q) * np.linalg.norm(d["vector"]))), i)
                      for i, d in docs.items()]
            return sorted(scored, key=lambda x: (-x[0], x[1]))[:knn["k"]]
        query = spec["query"]
        if "match_all" in query:
            return [(1.0, i) for i in sorted(docs)]
        if "exists" in query:
            return [(1.0, i) for i in sorted(docs) if query["exists"]["field"] in docs[i]]
        q = _bigrams(query["match"]["content"]["query"])
        scored = [(float(len(q & _bigrams(d["content"]))), i) for i, d in docs.items()]
        return sorted([s for s in scored if s[0] > 0], key=lambda x: (-x[0], x[1]))

    def search(self, docs, body):
        if "retriever" in body:
            rrf = body["retriever"]["rrf"]
            scores = {}
            for child in rrf["retrievers"]:
                (kind, spec), = child.items()
                for r, (_, i) in enumerate(self.rank(docs, spec)[:rrf["rank_window_size"]]):
                    scores[i] = scores.get(i, 0.0) + 1 / (rrf["rank_constant"] + r + 1)
            ranked = sorted(((s, i) for i, s in scores.items()), key=lambda x: (-x[0], x[1]))
        else:
            ranked = self.rank(docs, body)
        if "search_after" in body:
            ranked = [x for x in ranked if x[1] > body["search_after"][0]]
        hits = []
        for score, i in ranked[:body.get("size", 10)]:
            hit = {"_id": i, "_score": score, "sort": [i]}
            if body.get("_source") is not False:
                hit["_source"] = {f: docs[i][f] for f in body["_source"] if f in docs[i]}
            hits.append(hit)
        return {"hits": {"hits": hits}, "status": 200}


class FakeEncoder:
    """Deterministic bag-of-bigrams vectors (dim 16) standing in for the bi-encoder."""
    dim = 16

    def __init__(self, spec, max_length=256, batch_size=32, quantize="none", threads=0, **kw):
        self.spec = spec

    def encode(self, texts, kind="passage", progress=None):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            for g in _bigrams(t):
                out[r, zlib.crc32(g.encode()) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def es_cfg(*overrides):
    return apply_overrides(IndexConfig(), ["backend=elasticsearch", "elastic.backoff=1", *overrides])


def build(fake, corpus_file, index_root, *overrides, name="mini", force=False, conn=None):
    from odqa.index.elastic.build import build_es_index
    return build_es_index(corpus_file, name, es_cfg(*overrides), index_root, force=force, quiet=True,
                          connection=conn or fake.connection())


@pytest.fixture
def slept(monkeypatch):
    """The waits between bulk retries (`streaming_bulk`'s backoff), recorded instead of slept."""
    from elasticsearch.helpers import actions
    waits = []
    monkeypatch.setattr(actions.time, "sleep", waits.append)
    return waits


@pytest.fixture
def fake(slept):
    return FakeES()


@pytest.fixture
def fake_encoder(monkeypatch, tmp_path):
    from odqa.retrieval import dense
    monkeypatch.setattr(dense, "DenseEncoder", FakeEncoder)
    enc = tmp_path / "enc"
    enc.mkdir()
    return str(enc)


# ------------------------------------------------------------------ what odqa sends
def test_index_body_nori_similarity_and_documents(fake, corpus_file, index_root, tmp_path):
    userdict = tmp_path / "userdict.txt"
    userdict.write_text("# nori user dictionary\n백록담\n세종시 세종 시\n\n", encoding="utf-8")
    conn = fake.connection(api_key="sekrit-key")
    res = build(fake, corpus_file, index_root, "bm25.k1=1.1", "bm25.b=0.6", f"elastic.user_dictionary={userdict}",
                "elastic.decompound_mode=discard", "elastic.replicas=0", conn=conn)
    assert res.status == "built"
    (create,) = fake.sent("PUT", res.manifest["elasticsearch"]["index"])
    s, m = create["settings"], create["mappings"]
    assert s["similarity"] == {"odqa_bm25": {"type": "BM25", "k1": 1.1, "b": 0.6}}
    assert s["number_of_replicas"] == 0 and s["refresh_interval"] == "-1"
    tok = s["analysis"]["tokenizer"]["odqa_nori"]
    assert tok["type"] == "nori_tokenizer" and tok["decompound_mode"] == "discard"
    assert tok["user_dictionary_rules"] == ["백록담", "세종시 세종 시"] and "user_dictionary" not in tok
    pos = s["analysis"]["filter"]["odqa_pos"]
    assert pos["type"] == "nori_part_of_speech"
    assert {"J", "E", "XSN", "SF"} <= set(pos["stoptags"]) and not {"NNG", "NNP", "VV", "MAG", "SN"} & set(pos["stoptags"])
    assert s["analysis"]["analyzer"]["odqa_korean"]["tokenizer"] == "odqa_nori"
    content = m["properties"]["content"]
    assert content == {"type": "text", "analyzer": "odqa_korean", "similarity": "odqa_bm25"}
    assert "vector" not in m["properties"] and m["dynamic"] == "strict"

    docs = {}
    for ops in fake.sent("PUT", "_bulk") + fake.sent("POST", "_bulk"):
        docs.update({a["index"]["_id"]: d for a, d in zip(ops[::2], ops[1::2])})
    assert sorted(docs) == ["p1", "p2", "p3", "p4", "p5"]            # passage ids kept as _id
    assert docs["p1"]["aliases"] == ["p6"] and "aliases" not in docs["p2"]  # p6 was merged into p1
    assert docs["p3"]["content"].startswith("세종대왕\n") and docs["p3"]["id"] == "p3"

    meta = fake.indices[res.manifest["elasticsearch"]["index"]]["meta"]["odqa"]
    assert meta["analyzer"]["name"] == "nori" and meta["analyzer"]["user_dictionary"]["entries"] == 2
    assert meta["sparse"] == {**meta["sparse"], "backend": "elasticsearch", "method": "lucene", "k1": 1.1, "b": 0.6}
    assert fake.aliases == {"mini": [meta["elasticsearch"]["index"]]}
    pointer = (index_root / "mini" / "manifest.json").read_text()
    assert json.loads(pointer)["elasticsearch"]["url"] == URL and json.loads(pointer)["backend"] == "elasticsearch"
    assert "sekrit" not in pointer and "sekrit" not in json.dumps(fake.indices) and "sekrit" not in json.dumps(res.manifest)


def test_user_dictionary_on_nodes_and_bad_settings(fake, corpus_file, index_root):
    res = build(fake, corpus_file, index_root, "elastic.user_dictionary_path=analysis/userdict_ko.txt")
    (create,) = fake.sent("PUT", res.manifest["elasticsearch"]["index"])
    assert create["settings"]["analysis"]["tokenizer"]["odqa_nori"]["user_dictionary"] == "analysis/userdict_ko.txt"
    with pytest.raises(OdqaError, match="Lucene's BM25; `method` bm25l needs the local backend"):
        build(fake, corpus_file, index_root, "bm25.method=bm25l")
    with pytest.raises(OdqaError, match="config field 'elastic.fusion': input should be 'auto', 'server' or 'client'"):
        build(fake, corpus_file, index_root, "elastic.fusion=magic")
    with pytest.raises(OdqaError, match="invalid Elasticsearch index name 'Mini'"):
        build(fake, corpus_file, index_root, name="Mini")
    with pytest.raises(OdqaError, match="config field 'backend': input should be 'local' or 'elasticsearch'"):
        build_index(corpus_file, "x", apply_overrides(IndexConfig(), ["backend=solr"]), index_root)


def test_missing_nori_says_so_and_falls_back_only_when_allowed(corpus_file, index_root, caplog):
    fake = FakeES(nori=False)
    with pytest.raises(OdqaError, match=r"at http://es.test:9200 has no analysis-nori plugin.*`allow_fallback`"):
        build(fake, corpus_file, index_root)
    assert not fake.sent("PUT", "mini") and not fake.indices
    res = build(fake, corpus_file, index_root, "elastic.allow_fallback=true")
    (create,) = fake.sent("PUT", res.manifest["elasticsearch"]["index"])
    assert create["settings"]["analysis"] == {"analyzer": {"odqa_korean": {"type": "cjk"}}}
    assert res.manifest["analyzer"]["name"] == "cjk"
    assert "using the cjk bigram analyzer" in logged(caplog)


def test_query_bodies():
    assert es_schema.sparse_query("한라산 높이", 5) == {
        "query": {"match": {"content": {"query": "한라산 높이"}}}, "size": 5,
        "_source": ["id", "title", "text", "doc_id", "metadata"], "track_total_hits": False}
    knn = es_schema.knn_query(np.array([0.5, 0.5]), 10, 100)["knn"]
    assert knn == {"field": "vector", "query_vector": [0.5, 0.5], "k": 10, "num_candidates": 100}
    rrf = es_schema.rrf_query("질문", [1.0, 0.0], 3, 50, 60, 20)["retriever"]["rrf"]
    assert rrf["rank_window_size"] == 50 and rrf["rank_constant"] == 60
    assert rrf["retrievers"][0] == {"standard": {"query": {"match": {"content": {"query": "질문"}}}}}
    assert rrf["retrievers"][1]["knn"]["k"] == 50 and rrf["retrievers"][1]["knn"]["num_candidates"] == 50
    assert es_schema.server_rrf_supported("8.16.0") and es_schema.server_rrf_supported("9.0.1")
    assert not es_schema.server_rrf_supported("8.15.3") and not es_schema.server_rrf_supported("x")
    assert es_schema.rrf_licensed("enterprise") and es_schema.rrf_licensed("trial") and es_schema.rrf_licensed(None)
    assert not es_schema.rrf_licensed("basic") and not es_schema.rrf_licensed("platinum")


def test_filters_become_filter_clauses_inside_the_query():
    from odqa.retrieval.filters import parse_filters
    f = parse_filters(["source=wiki", "lang in [ko, en]", "year>=2000", "date<=2024-01-01", "kind!=draft"])
    body = es_schema.sparse_query("ＫＴＸ 노선", 5, f)["query"]["bool"]
    assert body["must"] == [{"match": {"content": {"query": "KTX 노선"}}}]       # normalised as the local analyzers
    assert body["filter"] == [
        {"term": {"metadata.source": "wiki"}}, {"terms": {"metadata.lang": ["ko", "en"]}},
        {"range": {"metadata.year": {"gte": 2000}}}, {"range": {"metadata.date": {"lte": "2024-01-01\uffff"}}},
        {"bool": {"must_not": [{"term": {"metadata.kind": "draft"}}]}}]
    knn = es_schema.knn_query([1.0, 0.0], 3, 10, f)["knn"]
    assert knn["filter"] == body["filter"]
    rrf = es_schema.rrf_query("질문", [1.0, 0.0], 3, 50, 60, 20, f)["retriever"]["rrf"]["retrievers"]
    assert rrf[0]["standard"]["query"]["bool"]["filter"] == body["filter"] and rrf[1]["knn"]["filter"] == body["filter"]
    assert "metadata" in es_schema.index_body({}, 0.3, 0.1)["mappings"]["properties"]


def test_analysis_keeps_every_tag_when_pos_is_empty():
    # analyzer.pos: [] keeps every token locally; on nori that is no POS filter, not an empty stoptags list
    a = es_schema.analysis(True, "none", [])
    assert "filter" not in a and a["analyzer"]["odqa_korean"]["filter"] == ["nori_readingform", "lowercase"]
    a = es_schema.analysis(True, "none", ["NN"])
    assert a["analyzer"]["odqa_korean"]["filter"][0] == "odqa_pos" and "NNG" not in a["filter"]["odqa_pos"]["stoptags"]
    with pytest.raises(OdqaError, match="unknown nori decompound mode 'full'"):
        es_schema.analysis(True, "full")


# ------------------------------------------------------------------ load, retrieve, evaluate
def test_load_index_retrieves_and_evaluates_like_a_local_index(fake, corpus_file, questions_file, index_root):
    build(fake, corpus_file, index_root)
    idx = load_index("mini", index_root, connection=fake.connection())
    assert idx.stale == [] and idx.manifest["corpus"]["passages"] == 5 and idx.manifest["backend"] == "elasticsearch"
    hits = idx.retriever("sparse").search(["조선의 임금 훈민정음", "거북선"], 2)
    assert [h.passage.id for h in hits[0]] == ["p3", "p4"] and [h.rank for h in hits[0]] == [1, 2]
    assert hits[0][0].passage.title == "세종대왕" and hits[0][0].source == "sparse" and hits[1][0].passage.id == "p4"
    assert fake.sent("POST", "/mini/_msearch")[-1] == [{}, es_schema.sparse_query("조선의 임금 훈민정음", 2),
                                                       {}, es_schema.sparse_query("거북선", 2)]

    assert idx.canonical("p6") == "p1" and idx.canonical("p2") == "p2"
    assert idx.passage_ids() == {p.id for p in idx.passages} == {"p1", "p2", "p3", "p4", "p5"}
    assert len(idx.passages) == 5 and idx.passages[2].id == "p3"
    report = evaluate(idx.retriever("sparse").search, load_questions(questions_file),
                      Judge(idx.canonical, idx.passage_ids()), k=5)
    m = report["metrics"]
    assert m["judged_by"]["id"] == 5 and m["recall@5"] == 1.0   # q5's gold p6 is an alias of p1
    with pytest.raises(OdqaError, match="analysed by Elasticsearch.*need a local index"):
        idx.analyzer()
    with pytest.raises(OdqaError, match="has no dense part"):
        idx.retriever("dense")


def test_dense_vectors_knn_and_both_fusions(fake, corpus_file, index_root, fake_encoder, caplog):
    res = build(fake, corpus_file, index_root, "dense.enabled=true", f"dense.encoder={fake_encoder}",
                "elastic.num_candidates=30")
    (create,) = fake.sent("PUT", res.manifest["elasticsearch"]["index"])
    assert create["mappings"]["properties"]["vector"] == {"type": "dense_vector", "dims": 16, "index": True,
                                                          "similarity": "cosine"}
    assert res.manifest["dense"]["dim"] == 16 and res.manifest["dense"]["index"] == "dense_vector"
    assert res.manifest["dense"]["window_stride"] == 0 and logged(caplog) == ""   # one vector per passage
    assert all(len(d["vector"]) == 16 for d in fake.indices[res.manifest["elasticsearch"]["index"]]["docs"].values())

    idx = load_index("mini", index_root, connection=fake.connection())
    q = "훈민정음을 창제한 임금"
    dense_hits = idx.retriever("dense").search([q], 3)[0]
    body = fake.sent("POST", "_msearch")[-1][1]
    assert body["knn"]["k"] == 3 and body["knn"]["num_candidates"] == 30 and len(body["knn"]["query_vector"]) == 16
    assert dense_hits[0].passage.id == "p3" and dense_hits[0].source == "dense"

    # 8.15: RRF retriever not GA -> odqa fuses on the client, exactly as the local hybrid does
    cfg = HybridConfig(method="rrf", depth=4)
    hy = idx.retriever("hybrid", cfg)
    got = hy.search([q], 3)[0]
    assert not any("retriever" in b for ops in fake.sent("POST", "_msearch") for b in ops[1::2])
    sp, de = hy.candidates([q], 3)
    assert got == fuse(sp[0], de[0], cfg, 3) and got[0].source == "hybrid"
    mm = idx.retriever("hybrid", HybridConfig(alpha=0.3)).search([q], 3)[0]
    assert [h.passage.id for h in mm] == [h.passage.id for h in fuse(*[x[0] for x in hy.candidates([q], 3)],
                                                                      HybridConfig(alpha=0.3), 3)]

    # 8.16+: the server's RRF retriever, one request per query
    fake.version = "8.16.1"
    build(fake, corpus_file, index_root, "dense.enabled=true", f"dense.encoder={fake_encoder}")
    idx = load_index("mini", index_root, connection=fake.connection())
    n = len(fake.requests)
    got = idx.retriever("hybrid", HybridConfig(method="rrf", depth=4, rrf_k=10)).search([q], 2)[0]
    (ops,) = [b for m, p, b in fake.requests[n:] if p.endswith("_msearch")]
    rrf = ops[1]["retriever"]["rrf"]
    assert rrf["rank_constant"] == 10 and rrf["rank_window_size"] == 4 and ops[1]["size"] == 2
    assert rrf["retrievers"][0]["standard"]["query"]["match"]["content"]["query"] == q and "knn" in rrf["retrievers"][1]
    assert got[0].passage.id == "p3" and got[0].source == "hybrid"

    # a basic license (the default): the retriever needs enterprise, so odqa fuses on the client, silently
    fake.license = "basic"
    n = len(fake.requests)
    assert idx.retriever("hybrid", HybridConfig(method="rrf")).search([q], 2)[0][0].passage.id == "p3"
    assert not any("retriever" in b for m, p, ops in fake.requests[n:] if p.endswith("_msearch") for b in ops[1::2])
    assert logged(caplog) == ""

    # license unreadable: try the retriever; the server refuses the whole _msearch -> warn once, fuse on the client
    fake.fault = lambda m, p, b: _err(403, "security_exception", "action [cluster:monitor/xpack/license/get] is "
                                      "unauthorized") if p == "/_license" else None
    hy = idx.retriever("hybrid", HybridConfig(method="rrf"))
    assert hy.server and hy.search([q], 2)[0][0].passage.id == "p3" and hy.search([q], 2) and not hy.server
    err = logged(caplog)
    assert err.count("fusing on the client instead") == 1 and "license is non-compliant" in err

    # elastic.fusion: server never falls back (and says why the server refused)
    fake.fault, fake.rrf = None, False
    build(fake, corpus_file, index_root, "dense.enabled=true", f"dense.encoder={fake_encoder}", "elastic.fusion=server")
    hy = load_index("mini", index_root, connection=fake.connection()).retriever("hybrid", HybridConfig(method="rrf"))
    with pytest.raises(OdqaError, match=r"failed to search index 'mini': HTTP 400 parsing_exception: unknown "
                                        r"retriever \[rrf\]$"):
        hy.search([q], 2)


# ------------------------------------------------------------------ retries, aliases, failures
def test_bulk_retries_429_and_5xx_with_backoff(fake, corpus_file, index_root, slept):
    rejected = {"p3": 2}

    def item_fault(pid):
        if rejected.get(pid):
            rejected[pid] -= 1
            return 429

    calls = {"n": 0}

    def fault(method, path, body):
        if path.endswith("_bulk"):
            calls["n"] += 1
            if calls["n"] == 1:
                return _err(503, "unavailable_shards_exception", "primary shard is not active")

    fake.item_fault, fake.fault = item_fault, fault
    res = build(fake, corpus_file, index_root)
    assert res.status == "built" and slept == [1.0, 2.0, 4.0]  # 503, then p3 429 twice
    retried = fake.sent("PUT", "_bulk") + fake.sent("POST", "_bulk")
    assert len(retried) == 4 and [a["index"]["_id"] for a in retried[-1][::2]] == ["p3"]  # only the rejected item
    assert len(fake.indices[res.manifest["elasticsearch"]["index"]]["docs"]) == 5
    # the wait doubles from elastic.backoff up to a minute
    slept.clear()
    fake.item_fault = lambda pid: 429 if pid == "p1" else None
    with pytest.raises(OdqaError, match="kept failing a bulk request after 7 retries"):
        build(fake, corpus_file, index_root, "elastic.retries=7", "elastic.backoff=2", force=True)
    assert slept == [2, 4, 8, 16, 32, 60, 60]


def test_bulk_that_keeps_failing_leaves_the_alias_and_reports_the_count(fake, corpus_file, index_root, slept):
    first = build(fake, corpus_file, index_root).manifest["elasticsearch"]["index"]
    fake.item_fault = lambda pid: 429 if pid in ("p3", "p4", "p5") else None
    with pytest.raises(OdqaError) as e:
        build(fake, corpus_file, index_root, "elastic.bulk_size=2", "elastic.retries=3", force=True)
    msg = str(e.value)
    assert "\n" not in msg and "kept failing a bulk request after 3 retries" in msg and "HTTP 429" in msg
    assert "stopped with 2 of 5 passages indexed" in msg
    assert f"alias 'mini' unchanged (still serving '{first}')" in msg and "deleted" in msg
    assert slept == [1.0, 2.0, 4.0]
    assert fake.aliases == {"mini": [first]} and list(fake.indices) == [first]  # partial index deleted
    idx = load_index("mini", index_root, connection=fake.connection())
    assert idx.retriever().search(["거북선"], 1)[0][0].passage.id == "p4"

    fake.item_fault = lambda pid: 400 if pid == "p2" else None
    with pytest.raises(OdqaError, match=r"rejected passage 'p2' \(HTTP 400 mapper_parsing_exception.*stopped with "
                                        r"1 of 5 passages indexed"):
        build(fake, corpus_file, index_root, force=True)
    assert fake.aliases == {"mini": [first]}


def test_rebuild_moves_the_alias_atomically(fake, corpus_file, index_root):
    first = build(fake, corpus_file, index_root).manifest["elasticsearch"]["index"]
    n = len(fake.requests)
    again = build(fake, corpus_file, index_root)
    assert again.status == "up-to-date" and not [r for r in fake.requests[n:] if r[0] == "PUT" and "_" not in r[1]]
    res = build(fake, corpus_file, index_root, "bm25.k1=0.9")
    assert res.status == "rebuilt" and res.reasons == ["sparse"]
    second = res.manifest["elasticsearch"]["index"]
    assert second != first and second.startswith("mini-")
    (actions,) = [b["actions"] for b in fake.sent("POST", "/_aliases")[-1:]]
    assert actions == [{"add": {"index": second, "alias": "mini"}}, {"remove": {"index": first, "alias": "mini"}}]
    assert fake.aliases == {"mini": [second]} and first not in fake.indices
    assert build(fake, corpus_file, index_root, "bm25.k1=0.9", force=True).status == "rebuilt"
    # search settings are updated in place, without a rebuild
    res = build(fake, corpus_file, index_root, "bm25.k1=0.9", "elastic.fusion=client")
    assert res.status == "up-to-date" and res.manifest["elasticsearch"]["fusion"] == "client"

    fake.indices["other"] = {"create": {}, "docs": {}, "meta": {}}
    with pytest.raises(OdqaError, match="'other' on http://es.test:9200 is an index, not an alias odqa manages"):
        build(fake, corpus_file, index_root, name="other")
    fake.aliases["theirs"] = ["other"]
    with pytest.raises(OdqaError, match="points to 'other', which odqa did not build"):
        build(fake, corpus_file, index_root, name="theirs")
    assert "other" in fake.indices


def test_local_index_is_not_replaced_without_force(fake, corpus_file, index_root):
    build_index(corpus_file, "mini", IndexConfig(), index_root)
    with pytest.raises(OdqaError, match="is a local index; building it on Elasticsearch would replace it"):
        build(fake, corpus_file, index_root)


def test_meta_manifest_is_checked_on_load(fake, corpus_file, index_root):
    res = build(fake, corpus_file, index_root)
    concrete = res.manifest["elasticsearch"]["index"]
    conn = fake.connection()
    fake.version = "8.17.0"
    with open(corpus_file, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": "p9", "text": "새 문서"}, ensure_ascii=False) + "\n")
    stale = load_index("mini", index_root, connection=conn).stale
    assert "analyzer 'nori' was elasticsearch-8.15.0 at build time, now elasticsearch-8.17.0" in stale
    assert any("changed since the build" in s for s in stale)

    fake.indices[concrete]["meta"]["odqa"]["format_version"] = 99
    with pytest.raises(OdqaError, match=r"format version 99, this odqa reads 3 \(and migrates from 1\): rebuild with `odqa index .* --name mini --backend elasticsearch --force`"):
        load_index("mini", index_root, connection=conn)
    fake.indices[concrete]["meta"] = {}
    with pytest.raises(OdqaError, match=f"index '{concrete}' behind alias 'mini' on {URL} has no odqa manifest"):
        load_index("mini", index_root, connection=conn)
    fake.aliases.clear()
    with pytest.raises(OdqaError, match=f"alias 'mini' on Elasticsearch at {URL}, which does not exist there"):
        load_index("mini", index_root, connection=conn)


# ------------------------------------------------------------------ connection and faults
def test_connection_settings_from_flags_and_env(tmp_path, monkeypatch):
    def environment(**env):
        for var in ("URL", "API_KEY", "USER", "PASSWORD", "CA", "VERIFY"):
            monkeypatch.delenv(f"ODQA_ES_{var}", raising=False)
        for var, value in env.items():
            monkeypatch.setenv(var, value)

    environment(ODQA_ES_URL="https://elastic:pw@es.example:9243/", ODQA_ES_API_KEY="k3y")
    c = ESConnection.resolve()
    assert c.url == "https://es.example:9243" and c.user == "elastic" and c.password == "pw"
    assert c.api_key == "k3y" and c.verify_certs and "pw" not in repr(c) and "k3y" not in repr(c)
    assert c.public() == {"url": "https://es.example:9243", "verify_certs": True, "ca_certs": None}
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    environment(ODQA_ES_URL="http://env:9200", ODQA_ES_CA=str(ca), ODQA_ES_VERIFY="0")
    c = ESConnection.resolve("http://flag:9200")
    assert c.url == "http://flag:9200" and c.ca_certs == str(ca) and c.verify_certs is False
    with pytest.raises(OdqaError, match="no Elasticsearch URL: pass `es_url` or set ODQA_ES_URL"):
        environment()
        ESConnection.resolve()
    with pytest.raises(OdqaError, match="nope.pem: CA file not found"):
        ESConnection.resolve("http://h:9200", ca_certs="nope.pem")
    with pytest.raises(OdqaError, match="without a password: set ODQA_ES_PASSWORD"):
        ESConnection.resolve("http://h:9200", user="bob")


def test_unreachable_auth_and_version_errors_are_one_line(fake, corpus_file, index_root):
    fake.down = True
    with pytest.raises(OdqaError) as e:
        build(fake, corpus_file, index_root)
    assert str(e.value).startswith(f"cannot reach Elasticsearch at {URL} (connection refused)")
    fake.down, fake.api_key = False, "right"
    with pytest.raises(OdqaError) as e:
        build(fake, corpus_file, index_root, conn=fake.connection(api_key="wrong"))
    assert "HTTP 401, authentication failed, api key" in str(e.value) and "wrong" not in str(e.value)
    with pytest.raises(OdqaError, match=r"requires authentication \(HTTP 401\) and no credentials were given: "
                                        r"set ODQA_ES_API_KEY"):
        build(fake, corpus_file, index_root)
    build(fake, corpus_file, index_root, conn=fake.connection(api_key="right"))
    fake.fault = lambda m, p, b: _err(403, "security_exception", "action [indices:data/read/search] is unauthorized")
    with pytest.raises(OdqaError, match=r"authenticated, but not allowed to read alias 'mini' \(HTTP 403"):
        load_index("mini", index_root, connection=fake.connection(api_key="right"))
    fake.api_key = None
    fake.fault = lambda m, p, b: _err(400, "media_type_header_exception", "Accept version must be either 8 or 7")
    with pytest.raises(OdqaError, match=r"client .* is newer than the server at .*pip install 'elasticsearch>=8.16,<9'"):
        build(fake, corpus_file, index_root)
    fake.fault, fake.version = None, "7.17.0"
    with pytest.raises(OdqaError, match="is version 7.17.0: odqa needs 8.0 or newer"):
        build(fake, corpus_file, index_root)
    fake.version = "8.3.3"
    with pytest.raises(OdqaError, match="is version 8.3.3: kNN search of dense vectors needs 8.4 or newer"):
        build(fake, corpus_file, index_root, "dense.enabled=true", name="dense")


def test_search_retries_then_gives_a_clear_error(fake, corpus_file, index_root):
    build(fake, corpus_file, index_root)
    client_conn = fake.connection()
    idx = load_index("mini", index_root, connection=client_conn)
    idx.client.retries = 2
    fake.fault = lambda m, p, b: _err(429, "es_rejected_execution_exception", "search queue full") \
        if p.endswith("_msearch") else None
    with pytest.raises(OdqaError, match=r"kept failing searches of 'mini' after 2 retries \(last: HTTP 429 "
                                        r"es_rejected_execution_exception: search queue full\)"):
        idx.retriever().search(["한라산"], 3)
    assert len([p for m, p, b in fake.requests if p.endswith("_msearch")]) == 3   # sent, then retried twice


def logged(caplog) -> str:
    """What odqa logged since the last call (warnings go through `logging`; the CLI prints them)."""
    text = caplog.text
    caplog.clear()
    return text


def test_cli_index_retrieve_evaluate_against_either_backend(fake, cli, corpus_file, questions_file, tmp_path,
                                                             monkeypatch):
    """`odqa index --backend elasticsearch` takes its connection from flags; retrieve/evaluate then read the
    pointer and the environment, and answer exactly as against the local index of the same corpus."""
    resolve = ESConnection.resolve.__func__

    def on_fake(cls, *a, **kw):  # the real resolution, then the fake transport
        conn = resolve(cls, *a, **kw)
        conn.node_class = fake.connection().node_class
        return conn

    monkeypatch.setattr(ESConnection, "resolve", classmethod(on_fake))
    for var in ("ODQA_ES_URL", "ODQA_ES_API_KEY", "ODQA_ES_USER", "ODQA_ES_PASSWORD", "ODQA_ES_CA", "ODQA_ES_VERIFY"):
        monkeypatch.delenv(var, raising=False)
    fake.api_key = "sekrit-key"
    es_root, local_root = tmp_path / "es", tmp_path / "local"
    code, out, err = cli("index", corpus_file, "--name", "mini", "--backend", "elasticsearch", "--es-url", URL,
                         "--es-api-key", "sekrit-key", "--set", "elastic.replicas=0", "--index-dir", es_root, "-q")
    assert code == 0 and f"built index 'mini' on Elasticsearch {URL} (alias mini -> mini-" in out
    assert "sekrit" not in out + err + (es_root / "mini" / "manifest.json").read_text()
    assert cli("index", corpus_file, "--name", "mini", "--index-dir", local_root, "-q")[0] == 0

    code, out, err = cli("retrieve", "훈민정음", "--index", "mini", "--index-dir", es_root)
    assert code == 2 and "requires authentication (HTTP 401)" in err   # credentials come from the environment
    monkeypatch.setenv("ODQA_ES_API_KEY", "sekrit-key")
    for root in (es_root, local_root):
        code, out, _ = cli("retrieve", "훈민정음을 창제한 임금", "--index", "mini", "--index-dir", root, "-k", "2",
                           "--json")
        assert code == 0 and json.loads(out)["hits"][0]["id"] == "p3"
        code, out, _ = cli("evaluate", "retrieval", "--index", "mini", "--questions", questions_file, "--index-dir",
                           root, "--json", "-q")
        m = json.loads(out)["metrics"]
        assert code == 0 and m["judged_by"]["id"] == 5 and m["recall@5"] == 1.0


def test_cli_errors_are_one_line(cli, corpus_file, tmp_path, monkeypatch):
    root = tmp_path / "idx"
    code, _, err = cli("index", corpus_file, "--name", "x", "--es-url", "http://127.0.0.1:9", "--index-dir", root)
    assert code == 2 and err == "odqa: error: --es-* options need --backend elasticsearch"
    monkeypatch.delenv("ODQA_ES_URL", raising=False)
    code, _, err = cli("index", corpus_file, "--name", "x", "--backend", "elasticsearch", "--index-dir", root)
    assert code == 2 and err == "odqa: error: no Elasticsearch URL: pass --es-url or set ODQA_ES_URL"
    code, _, err = cli("index", corpus_file, "--name", "x", "--backend", "elasticsearch", "--es-url",
                    "http://127.0.0.1:9", "--index-dir", root)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("odqa: error: cannot reach Elasticsearch at http://127.0.0.1:9 (connection refused)")
    # a pointer to a cluster that went away: retrieve says so in one line
    (root / "gone").mkdir(parents=True)
    (root / "gone" / "manifest.json").write_text(json.dumps(
        {"format_version": 1, "backend": "elasticsearch", "name": "gone",
         "elasticsearch": {"url": "http://127.0.0.1:9", "alias": "gone", "verify_certs": True, "ca_certs": None}}))
    code, _, err = cli("retrieve", "한라산", "--index", "gone", "--index-dir", root)
    assert code == 2 and err.startswith("odqa: error: cannot reach Elasticsearch at http://127.0.0.1:9")


def test_missing_client_package_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "elasticsearch", None)
    with pytest.raises(OdqaError, match=r"^the Elasticsearch backend needs the elasticsearch client: "
                                        r"pip install 'odqa\[elasticsearch\]'$"):
        es_module()


def test_explicit_window_stride_is_not_used_on_elasticsearch(fake, corpus_file, index_root, fake_encoder, caplog):
    res = build(fake, corpus_file, index_root, "dense.enabled=true", f"dense.encoder={fake_encoder}",
                "dense.window_stride=64")
    assert res.manifest["dense"]["window_stride"] == 0
    assert "dense.window_stride is not used" in logged(caplog)
