"""Parquet, CSV, TSV and datasets corpora with metadata; AutoRAG question sets; indexed and evaluated end to end."""

import json

import pytest

from odqa.corpus import load_corpus, load_questions
from odqa.errors import CorpusError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DOCS = [("d-halla", "한라산은 제주도에 있는 화산으로 높이는 1,947 m이다.", "wiki", 2001, "2021-05-01"),
        ("d-jiri", "지리산은 대한민국 최초의 국립공원으로 1967년에 지정되었다.", "wiki", 1999, "2019-03-02"),
        ("d-ktx", "KTX는 2004년에 개통한 대한민국의 고속철도이다.", "news", 2004, "2004-04-01"),
        ("d-seoul", "서울은 대한민국의 수도이며 한강이 도시를 가로지른다.", "news", 2010, "2023-12-31")]


@pytest.fixture
def autorag(tmp_path):
    """An AutoRAG-layout corpus (doc_id, contents, metadata) and QA set (qid, query, retrieval_gt, generation_gt)."""
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [d[0] for d in DOCS], "contents": [d[1] for d in DOCS],
                             "metadata": [{"source": d[2], "year": d[3], "date": d[4]} for d in DOCS]}), corpus)
    qa = tmp_path / "qa.parquet"
    pq.write_table(pa.table({"qid": ["q1", "q2", "q3"],
                             "query": ["한라산의 높이는?", "최초의 국립공원은?", "KTX는 언제 개통했나?"],
                             "retrieval_gt": [[["d-halla"]], [["d-jiri"]], [["d-ktx"]]],
                             "generation_gt": [["1,947 m"], ["지리산"], ["2004년"]]}), qa)
    return corpus, qa


def test_autorag_parquet_reads_with_its_metadata(autorag):
    corpus, qa = autorag
    c = load_corpus(corpus)
    assert c.fmt == "parquet" and [p.id for p in c.passages] == [d[0] for d in DOCS]
    assert c.passages[2].metadata == {"source": "news", "year": 2004, "date": "2004-04-01"}
    qs = load_questions(qa)
    assert [(q.id, q.question, q.gold_ids, q.answers) for q in qs][0] == ("q1", "한라산의 높이는?", ["d-halla"], ["1,947 m"])


def test_index_and_evaluate_end_to_end(autorag, tmp_path, cli):
    corpus, qa = autorag
    root = str(tmp_path / "idx")
    code, out, err = cli("index", str(corpus), "--name", "ar", "--index-dir", root, "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["status"] == "built"
    code, out, err = cli("evaluate", "retrieval", "--index", "ar", "--questions", str(qa), "--index-dir", root,
                         "--json", "-k", "4")
    assert code == 0, err
    m = json.loads(out)["metrics"]
    assert m["questions"] == 3 and m["recall@1"] == 1.0 and m["judged_by"]["id"] == 3
    code, out, err = cli("evaluate", "retrieval", "--index", "ar", "--questions", str(qa), "--index-dir", root,
                         "--json", "-k", "4", "--filter", "source=news")
    assert code == 0, err       # only the KTX question's gold passage is a news passage
    assert json.loads(out)["metrics"]["recall@1"] == pytest.approx(1 / 3, abs=1e-3)
    code, out, err = cli("retrieve", "대한민국", "--index", "ar", "--index-dir", root, "--json",
                         "--filter", "year>=2004", "--filter", "date<2023-12-31")
    assert code == 0, err
    assert [h["id"] for h in json.loads(out)["hits"]] == ["d-ktx"]


def test_fields_named_on_the_command_line(tmp_path, cli):
    path = tmp_path / "docs.tsv"
    path.write_text("key\theading\tbody\tlang\tsource\n" + "".join(
        f"{d[0]}\t{d[0]}\t{d[1]}\tko\t{d[2]}\n" for d in DOCS), encoding="utf-8")
    root = str(tmp_path / "idx")
    code, _, err = cli("index", str(path), "--name", "t", "--index-dir", root, "--quiet")
    assert code != 0 and err.count("\n") == 0
    assert "docs.tsv: no column 'id', 'text' (columns: key, heading, body, lang, source)" in err
    assert "--text-field" in err and "--id-field" in err
    code, _, err = cli("index", str(path), "--name", "t", "--index-dir", root, "--quiet", "--id-field", "key",
                       "--title-field", "heading", "--text-field", "body", "--metadata-fields", "source")
    assert code == 0, err
    from odqa.api import load_index
    p = load_index("t", root).passages[0]
    assert (p.id, p.title, p.metadata) == ("d-halla", "d-halla", {"source": "wiki"})


def test_csv_and_datasets_folders(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text('id,text,year\n1,"본문, 쉼표 포함",2001\n2,두번째,1999\n', encoding="utf-8")
    c = load_corpus(csv)
    assert c.fmt == "csv" and c.passages[0].text == "본문, 쉼표 포함" and c.passages[1].metadata == {"year": "1999"}
    qcsv = tmp_path / "q.csv"
    qcsv.write_text("qid,query,retrieval_gt,generation_gt\nq1,무엇?,\"[['1'], ['2']]\",\"['본문']\"\n", encoding="utf-8")
    q = load_questions(qcsv)[0]
    assert (q.id, q.gold_ids, q.answers) == ("q1", ["1", "2"], ["본문"])
    from datasets import Dataset
    Dataset.from_dict({"id": ["a"], "text": ["데이터셋 본문"], "lang": ["ko"]}).save_to_disk(str(tmp_path / "hf"))
    c = load_corpus(tmp_path / "hf")
    assert c.fmt == "datasets" and c.passages[0].metadata == {"lang": "ko"} and len(c.sha256) == 64
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,a,extra\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.csv:2: 3 cells, the header has 2 columns"):
        load_corpus(bad)


def test_a_row_the_csv_module_cannot_parse_is_one_line_naming_file_and_line(tmp_path):
    from odqa.corpus.tables import iter_rows
    from odqa.errors import CorpusError
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,text\na,fine\nb,broken\rline\n")
    with pytest.raises(CorpusError, match=r"bad\.csv:\d+: not a well-formed CSV row"):
        list(iter_rows(bad, "csv"))
