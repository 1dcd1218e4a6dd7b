import json

import pytest

from odqa.corpus import chunk_text, load_corpus, load_questions, squad_passage_id
from odqa.errors import OdqaError
from tests.conftest import PASSAGES, write_jsonl


def squad_doc():
    return {"version": "t", "data": [{"title": "한라산", "paragraphs": [
        {"context": "한라산은 제주도에 있다.", "document_id": 17,
         "qas": [{"id": "a1", "question": "한라산은 어디에?", "answers": [{"text": "제주도", "answer_start": 5}]}]},
        {"context": "백록담은 한라산 정상에 있다.",
         "qas": [{"id": "a2", "question": "백록담은?", "answers": [{"text": "한라산 정상", "answer_start": 5}]}]}]}]}


def test_jsonl_dedup_keeps_aliases(corpus_file):
    c = load_corpus(corpus_file)
    assert c.fmt == "jsonl"
    assert [p.id for p in c.passages] == ["p1", "p2", "p3", "p4", "p5"]
    assert c.n_duplicates == 1 and c.canonical("p6") == "p1"
    assert len(c.sha256) == 64


def test_wiki_format(tmp_path):
    f = tmp_path / "wikipedia_documents.json"
    f.write_text(json.dumps({"0": {"text": "가나다 본문", "title": "가", "document_id": 0, "url": "x"},
                             "1": {"text": "라마바 본문", "title": "라", "document_id": 1}}, ensure_ascii=False))
    c = load_corpus(f)
    assert c.fmt == "wiki" and [(p.id, p.title) for p in c.passages] == [("0", "가"), ("1", "라")]


def test_squad_format_and_questions(tmp_path):
    f = tmp_path / "train.json"
    f.write_text(json.dumps(squad_doc(), ensure_ascii=False))
    c = load_corpus(f)
    assert c.fmt == "squad" and len(c.passages) == 2
    assert c.passages[0].id == squad_passage_id("한라산은 제주도에 있다.") and c.passages[0].doc_id == "17"
    qs = load_questions(f)
    assert [q.id for q in qs] == ["a1", "a2"]
    assert qs[0].gold_ids == [c.passages[0].id, "17"] and qs[0].answers == ["제주도"]
    assert qs[0].answer_starts == [5] and qs[1].gold_ids == [c.passages[1].id]


def test_txt_folder(tmp_path):
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("첫 번째 문서", encoding="utf-8")
    (d / "sub" / "b.txt").write_text("두 번째 문서", encoding="utf-8")
    c = load_corpus(d)
    assert c.fmt == "txt" and [p.id for p in c.passages] == ["a.txt", "sub/b.txt"]


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"id": "1", "text": "가"}\n{"id": "2", "text": \n', encoding="utf-8")
    with pytest.raises(OdqaError, match=r"bad\.jsonl:2: malformed JSON"):
        load_corpus(f)


def test_missing_field_names_field_and_record(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "text": "가"}, {"id": "2", "title": "t"}])
    with pytest.raises(OdqaError, match=r"c\.jsonl:2: missing field 'text'"):
        load_corpus(f)
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"7": {"title": "x"}}))
    with pytest.raises(OdqaError, match=r"record '7': missing field 'text'"):
        load_corpus(w, fmt="wiki")


def test_malformed_json_names_line(tmp_path):
    f = tmp_path / "s.json"
    f.write_text('{"data": [\n  {"title": "x",\n  "paragraphs": [}\n]}')
    with pytest.raises(OdqaError, match=r"s\.json:3: malformed JSON"):
        load_corpus(f, fmt="squad")


def test_squad_missing_context(tmp_path):
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(OdqaError, match=r"paragraphs\[0\]: missing field 'context'"):
        load_corpus(f)


def test_questions_errors(tmp_path):
    f = write_jsonl(tmp_path / "q.jsonl", [{"id": "1", "answers": ["x"]}])
    with pytest.raises(OdqaError, match=r"q\.jsonl:1: missing field 'question'"):
        load_questions(f)
    with pytest.raises(OdqaError, match="not found"):
        load_questions(tmp_path / "nope.jsonl")


def test_duplicate_id_with_other_text_is_an_error(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", [{"id": "1", "text": "가"}, {"id": "1", "text": "나"}])
    with pytest.raises(OdqaError, match="duplicate passage id '1'"):
        load_corpus(f)


def test_chunking_overlaps_and_covers():
    text = " ".join(f"단어{i}" for i in range(200))
    pieces = chunk_text(text, 100, 30)
    assert len(pieces) > 5
    assert all(len(p) <= 100 for _, p in pieces)
    for (s1, p1), (s2, _) in zip(pieces, pieces[1:]):
        assert s2 < s1 + len(p1)  # overlap
        assert text[s2:].startswith(text[s2:s2 + 5])
    assert pieces[-1][0] + len(pieces[-1][1]) == len(text)
    words = set(text.split())
    assert words == {w for _, p in pieces for w in p.split()}


def test_chunked_corpus_ids(tmp_path):
    long = " ".join(["가나다라마"] * 100)
    f = write_jsonl(tmp_path / "c.jsonl", [{"id": "d", "title": "t", "text": long}, *PASSAGES[:1]])
    c = load_corpus(f, chunk_size=120, chunk_overlap=20)
    ids = [p.id for p in c.passages]
    assert ids[0] == "d#0" and "p1" in ids and all(p.doc_id == "d" for p in c.passages if p.id.startswith("d#"))
