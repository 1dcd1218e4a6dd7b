"""Contract suite: the whole index -> retrieve -> evaluate path against a real Elasticsearch cluster.

Runs only when ODQA_ES_URL points at a cluster with the analysis-nori plugin (credentials from
ODQA_ES_API_KEY or ODQA_ES_USER/ODQA_ES_PASSWORD, CA from ODQA_ES_CA); otherwise the module
reports itself skipped. Every index and alias it creates is named `odqa-contract-*` and deleted.

    ODQA_ES_URL=http://localhost:9200 .venv/bin/python -m pytest -rs tests/test_elastic_contract.py
"""

import json
import os
import time

import pytest

if not os.environ.get("ODQA_ES_URL"):
    pytest.skip("ODQA_ES_URL is not set: no Elasticsearch cluster to run the contract suite against "
                "(see docs/scaling.md, 'Elasticsearch backend')", allow_module_level=True)
pytest.importorskip("elasticsearch", reason="the elasticsearch client is not installed: pip install 'odqa[elasticsearch]'")

from odqa.config import HybridConfig, IndexConfig, apply_overrides  # noqa: E402
from odqa.corpus import load_questions  # noqa: E402
from odqa.index.elastic.client import ESClient, ESConnection  # noqa: E402
from odqa.evaluation.retrieval import Judge, evaluate  # noqa: E402
from odqa.index.indexing import build_index, load_index  # noqa: E402
from tests.test_cli import odqa  # noqa: E402


@pytest.fixture
def name():
    n = f"odqa-contract-{os.getpid()}-{int(time.time())}"
    yield n
    client = ESClient(ESConnection.resolve())
    for target in client.alias_targets(n) + [n]:
        try:
            client.es.indices.delete(index=target, ignore_unavailable=True)
        except Exception:
            pass


def es_cfg(*overrides):
    return apply_overrides(IndexConfig(), ["backend=elasticsearch", "elastic.replicas=0", *overrides])


def test_index_retrieve_evaluate_rebuild(name, corpus_file, questions_file, index_root):
    res = build_index(corpus_file, name, es_cfg(), index_root, quiet=True)
    assert res.status == "built" and res.manifest["analyzer"]["name"] == "nori"
    first = res.manifest["elasticsearch"]["index"]
    assert build_index(corpus_file, name, es_cfg(), index_root, quiet=True).status == "up-to-date"

    idx = load_index(name, index_root)
    assert idx.stale == [] and idx.passage_ids() == {"p1", "p2", "p3", "p4", "p5"} and idx.canonical("p6") == "p1"
    hits = idx.retriever("sparse").search(["훈민정음을 창제한 임금은?", "거북선으로 왜군을 물리친 무신"], 3)
    assert hits[0][0].passage.id == "p3" and hits[1][0].passage.id == "p4"
    assert hits[0][0].passage.title == "세종대왕" and hits[0][0].score > 0
    m = evaluate(idx.retriever("sparse").search, load_questions(questions_file),
                 Judge(idx.canonical, idx.passage_ids()), k=5)["metrics"]
    assert m["judged_by"]["id"] == 5 and m["recall@5"] == 1.0

    res = build_index(corpus_file, name, es_cfg("bm25.k1=0.9"), index_root, quiet=True)
    assert res.status == "rebuilt" and res.reasons == ["sparse"]
    client = idx.client
    assert client.alias_targets(name) == [res.manifest["elasticsearch"]["index"]]
    assert not client.es.indices.exists(index=first)
    assert load_index(name, index_root).manifest["sparse"]["k1"] == 0.9


def test_cli_index_retrieve_evaluate(name, corpus_file, questions_file, tmp_path):
    out = json.loads(odqa("index", corpus_file, "--name", name, "--backend", "elasticsearch",
                          "--set", "elastic.replicas=0", "--json", cwd=tmp_path).stdout)
    assert out["status"] == "built" and out["manifest"]["corpus"]["passages"] == 5
    pointer = json.loads((tmp_path / "indexes" / name / "manifest.json").read_text())
    assert pointer["backend"] == "elasticsearch" and pointer["elasticsearch"]["alias"] == name
    for secret in ("ODQA_ES_API_KEY", "ODQA_ES_PASSWORD"):
        if os.environ.get(secret):
            assert os.environ[secret] not in json.dumps(pointer) + json.dumps(out)
    hits = json.loads(odqa("retrieve", "훈민정음을 만든 임금은?", "--index", name, "-k", "2", "--json",
                           cwd=tmp_path).stdout)
    assert hits["hits"][0]["id"] == "p3" and len(hits["hits"]) <= 2
    rep = json.loads(odqa("evaluate", "retrieval", "--index", name, "--questions", questions_file, "--json",
                          cwd=tmp_path).stdout)
    assert rep["metrics"]["questions"] == 5 and rep["metrics"]["recall@5"] == 1.0


def test_dense_knn_and_hybrid(name, corpus_file, index_root, tiny):
    pytest.importorskip("torch")
    res = build_index(corpus_file, name, es_cfg("dense.enabled=true", f"dense.encoder={tiny}"), index_root, quiet=True)
    assert res.manifest["dense"]["dim"] == 32
    idx = load_index(name, index_root)
    dense = idx.retriever("dense").search(["한라산"], 3)[0]
    assert len(dense) == 3 and all(h.source == "dense" for h in dense)
    for cfg in (HybridConfig(), HybridConfig(method="rrf", depth=5)):
        fused = idx.retriever("hybrid", cfg).search(["한라산 정상의 화구호"], 3)[0]
        assert 1 <= len(fused) <= 3 and fused[0].source == "hybrid"
        assert {h.passage.id for h in fused} <= {"p1", "p2", "p3", "p4", "p5"}
