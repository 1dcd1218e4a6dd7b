"""odqa.integrations.haystack against the real haystack-ai: components in a haystack.Pipeline, serialised."""

import os

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")     # offline: no usage statistics sent
pytest.importorskip("haystack", reason="the haystack extra: pip install -e '.[dev]'")

from haystack import Document, Pipeline  # noqa: E402
from haystack.dataclasses import ExtractedAnswer  # noqa: E402

import odqa  # noqa: E402
from odqa.integrations.haystack import OdqaReader, OdqaRetriever  # noqa: E402

QUESTION = "한라산의 높이는 몇 미터인가?"


@pytest.fixture(scope="module")
def qa_pipeline(demo_index_root):
    p = Pipeline()
    p.add_component("retriever", OdqaRetriever("demo", mode="sparse", index_dir=str(demo_index_root)))
    p.add_component("reader", OdqaReader(top_k=3))
    p.connect("retriever.documents", "reader.documents")
    return p


def test_retriever_then_reader_answers_as_odqa_ask(qa_pipeline, demo_index_root, cli):
    import json
    out = qa_pipeline.run({"retriever": {"query": QUESTION}, "reader": {"query": QUESTION}})
    answers = out["reader"]["answers"]
    assert 1 <= len(answers) <= 3 and all(isinstance(a, ExtractedAnswer) for a in answers)
    best = answers[0]
    code, stdout, err = cli("ask", QUESTION, "--index", "demo", "--mode", "sparse", "--index-dir", demo_index_root,
                            "--json")
    assert code == 0, err
    ask = json.loads(stdout)["answers"][0]
    assert (best.data, best.document.id, best.document_offset.start, best.document_offset.end) == \
        (ask["text"], ask["passage_id"], ask["start"], ask["end"]) == ("1,947 m", "demo-001", ask["start"], ask["end"])
    assert best.score == pytest.approx(ask["probability"], abs=1e-5)
    assert best.document.content[best.document_offset.start:best.document_offset.end] == "1,947 m"
    assert best.document.meta["title"] == "한라산" and best.document.meta["retriever"] == "sparse"


def test_the_pipeline_round_trips_through_its_dict_and_yaml(qa_pipeline, demo_index_root):
    data = qa_pipeline.to_dict()
    init = data["components"]["retriever"]["init_parameters"]
    assert init == {"index": "demo", "mode": "sparse", "top_k": None, "filters": None, "index_dir": str(demo_index_root),
                    "settings": {}}
    again = Pipeline.loads(qa_pipeline.dumps())
    out = again.run({"retriever": {"query": QUESTION, "top_k": 1}, "reader": {"query": QUESTION}})
    assert out["reader"]["answers"][0].data == "1,947 m"
    assert Pipeline.from_dict(data).to_dict() == data


def test_the_reader_reads_the_documents_given_and_nothing_else(qa_pipeline):
    reader = qa_pipeline.get_component("reader")
    docs = [Document(id="x", content="백두산은 높이가 2,744 m인 한반도에서 가장 높은 산이다.", meta={"title": "백두산"}),
            Document(id="y", content="김치는 배추로 담근다.")]
    out = reader.run(query="백두산의 높이는 몇 미터인가?", documents=docs, top_k=2)["answers"]
    assert out and out[0].data == "2,744 m" and out[0].document.id == "x"
    assert {a.document.id for a in out} <= {"x", "y"}
    assert reader.run(query="백두산의 높이는?", documents=[])["answers"] == []


def test_reader_settings_reach_the_pipeline():
    reader = OdqaReader(settings={"min_probability": 0.99999})
    doc = Document(id="x", content="백두산은 높이가 2,744 m인 산이다.")
    best = reader.run(query="백두산 옆 호수의 이름은?", documents=[doc])["answers"][0]
    assert best.meta["abstained"] is True
    with pytest.raises(odqa.OdqaError, match="no_such_setting"):
        OdqaReader(settings={"no_such_setting": 1}).warm_up()


def test_retriever_filters_from_init_and_from_run(meta_index_root):
    r = OdqaRetriever("m", top_k=6, filters=["source=wiki"], index_dir=str(meta_index_root))
    wiki = r.run(query="한라산 훈민정음 거북선 김치")["documents"]
    assert wiki and {d.meta["source"] for d in wiki} == {"wiki"}
    news = r.run(query="한라산 훈민정음 거북선 김치", filters={"source": "news"})["documents"]
    assert news and {d.meta["source"] for d in news} == {"news"}
    assert OdqaRetriever.from_dict(r.to_dict()).filters == ["source=wiki"]
