"""odqa.integrations.langchain against the real langchain-core: retriever, QA runnable and tool."""

import subprocess
import sys

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra: pip install -e '.[dev]'")

from odqa.integrations.langchain import OdqaQA, OdqaRetriever  # noqa: E402

QUESTION = "한라산의 높이는 몇 미터인가?"       # demo question dq-01, gold passage demo-001


@pytest.fixture(scope="module")
def retriever(demo_index_root):
    return OdqaRetriever.from_index("demo", mode="sparse", k=3, index_dir=demo_index_root)


def test_the_retriever_returns_the_gold_demo_passage_first(retriever):
    from langchain_core.documents import Document
    docs = retriever.invoke(QUESTION)
    assert 1 <= len(docs) <= 3 and all(isinstance(d, Document) for d in docs)
    first = docs[0]
    assert first.id == first.metadata["id"] == "demo-001" and first.metadata["title"] == "한라산"
    assert "1,947 m" in first.page_content
    assert first.metadata["retriever"] == "sparse" and first.metadata["index"] == "demo" and first.metadata["rank"] == 1
    assert first.metadata["source"] == "demo/demo-001"          # no `source` field in the demo corpus: INDEX/DOC_ID
    assert [d.metadata["score"] for d in docs] == sorted((d.metadata["score"] for d in docs), reverse=True)
    assert len(retriever.invoke(QUESTION, config={"tags": ["t"]})) == len(docs)     # runnable config accepted


def test_qa_gives_the_span_of_odqa_ask_with_its_evidence(retriever):
    qa = OdqaQA(retriever.pipeline)
    out = qa.invoke(QUESTION)
    ask = retriever.pipeline.ask(QUESTION)
    assert out["answer"] == ask.answer.text == "1,947 m" and out["probability"] == pytest.approx(ask.answer.probability)
    ev = out["evidence"]
    assert ev.id == "demo-001" and ev.page_content[out["start"]:out["end"]] == "1,947 m"
    assert qa.invoke({"question": QUESTION})["answer"] == "1,947 m"
    assert qa.batch([QUESTION, "대한민국에서 처음으로 국립공원이 된 산은 어디인가?"])[1]["answer"] == "지리산"


def test_the_qa_tool_answers_with_json(retriever):
    import json
    tool = OdqaQA(retriever.pipeline).as_tool()
    assert tool.name == "korean_qa" and set(tool.args) == {"question", "filters"}
    out = tool.invoke({"question": QUESTION})
    assert out["answer"] == "1,947 m" and out["evidence"]["id"] == "demo-001"
    json.dumps(out, ensure_ascii=False)                # what the caller gets back is plain JSON


def test_an_empty_question_is_refused_in_one_line(retriever):
    from odqa.api import OdqaError
    with pytest.raises(OdqaError):
        OdqaQA(retriever.pipeline).invoke("   ")


def test_import_odqa_imports_no_framework():
    code = ("import sys, odqa, odqa.api, odqa.integrations, odqa.cli.main; "
            "assert not {'langchain_core', 'haystack', 'mcp'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("extra,module", [("langchain", "langchain_core"), ("haystack", "haystack"),
                                          ("mcp", "mcp.server.mcpserver")])
def test_a_missing_extra_is_one_line_naming_it(extra, module):
    blocked = (f"import sys; sys.modules[{module!r}] = None\n"
               f"try:\n    import odqa.integrations.{extra}\n"
               "except ImportError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f'MissingExtra {module} is not installed: pip install "odqa[{extra}]"'


def test_odqa_mcp_without_its_extra_says_what_to_install():
    code = ("import sys; sys.modules['mcp.server.mcpserver'] = None; sys.argv = ['odqa', 'mcp']\n"
            "from odqa.cli.main import main; main()")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.strip() == \
        'odqa: error: mcp.server.mcpserver is not installed: pip install "odqa[mcp]"'


def test_without_a_mode_the_retriever_keeps_the_pipelines(serve_index_root):
    import odqa
    pipe = odqa.Pipeline.from_index("h", reader="none", mode="sparse", index_dir=serve_index_root, lazy_reader=True)
    assert {d.metadata["retriever"] for d in OdqaRetriever(pipeline=pipe).invoke("백록담이 있는 산은?")} == {"sparse"}
    assert {d.metadata["retriever"] for d in OdqaRetriever(pipeline=pipe, mode="hybrid").invoke("백록담이 있는 산은?")} == {"hybrid"}


def test_filters_keep_the_passages_whose_metadata_match(meta_index_root):
    retriever = OdqaRetriever.from_index("m", k=6, index_dir=meta_index_root, reader="none")
    every = retriever.invoke("한라산 거북선 김치")
    assert "p1" in {d.id for d in every} and every[0].metadata["source"] in ("wiki", "news")
    news = OdqaRetriever(pipeline=retriever.pipeline, k=6, filters=["source=news"]).invoke("한라산 거북선 김치")
    assert news and {d.metadata["source"] for d in news} == {"news"} and "p1" not in {d.id for d in news}
    assert all(d.metadata["year"] >= 2003 for d in news)
