"""Bad input (issue 20, input half): encodings, empty rows, long passages, offline model names,
incomplete model folders, arguments refused before anything loads."""

import json
import logging
import os
import subprocess
import sys
import time

import pytest

from odqa.corpus import load_corpus, load_questions
from odqa.errors import CorpusError
from tests.conftest import PASSAGES, QUESTIONS, squad_file, write_jsonl
from tests.test_cli import odqa


def one_line(p) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


# ------------------------------------------------------------------ encodings
def _corpus_text(fmt: str) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PASSAGES)
    if fmt == "wiki":
        return json.dumps({p["id"]: {"title": p["title"], "text": p["text"], "document_id": p["id"]}
                           for p in PASSAGES}, ensure_ascii=False)
    return PASSAGES[0]["text"]


@pytest.mark.parametrize("fmt,name", [("jsonl", "c.jsonl"), ("wiki", "wiki.json"), ("txt", "docs")])
def test_a_cp949_corpus_fails_with_the_hint_and_builds_with_encoding_cp949(tmp_path, fmt, name):
    f = tmp_path / name
    if fmt == "txt":                       # a folder of .txt files, one passage each
        f.mkdir()
        for q in PASSAGES[:4]:
            (f / f"{q['id']}.txt").write_bytes(q["text"].encode("cp949"))
    else:
        f.write_bytes(_corpus_text(fmt).encode("cp949"))
    p = odqa("index", f, "--name", "k", cwd=tmp_path, check=False)
    line = one_line(p)
    assert p.returncode == 3 and str(f) in line and "byte " in line and "--encoding cp949" in line, line
    out = json.loads(odqa("index", f, "--name", "k", "--encoding", "cp949", "--json", cwd=tmp_path).stdout)
    assert out["status"] == "built" and out["manifest"]["corpus"]["encoding"] == "cp949"
    hits = json.loads(odqa("retrieve", "한라산", "--index", "k", "--json", cwd=tmp_path).stdout)["hits"]
    assert "한라산" in hits[0]["text"]


def test_a_cp949_squad_file_reads_with_its_encoding_and_the_offset_is_exact(tmp_path):
    f = squad_file(tmp_path / "sq.json")
    raw = f.read_text(encoding="utf-8")
    f.write_bytes(raw.encode("cp949"))
    with pytest.raises(CorpusError, match=r"not UTF-8 text at byte (\d+)") as e:
        load_corpus(f)
    offset = int(e.value.args[0].split("at byte ")[1].split(" ")[0])
    first_korean = next(i for i, c in enumerate(raw) if ord(c) > 127)
    assert offset == len(raw[:first_korean].encode("cp949"))
    assert len(load_corpus(f, encoding="cp949").passages) == 5
    assert len(load_questions(f, encoding="cp949")) == len(load_questions(squad_file(tmp_path / "u.json")))


def test_jsonl_decode_errors_name_the_byte_offset_of_a_later_line(tmp_path):
    f = tmp_path / "c.jsonl"
    good = (json.dumps(PASSAGES[0], ensure_ascii=False) + "\n").encode("utf-8")
    f.write_bytes(good + b'{"id": "x", "text": "\xff"}\n')
    with pytest.raises(CorpusError, match=rf"{f}: not UTF-8 text at byte {len(good) + 21} "):
        load_corpus(f)
    with pytest.raises(CorpusError, match=r"is --encoding ascii right\?"):
        load_corpus(f, encoding="ascii")


@pytest.mark.parametrize("fmt,name", [("jsonl", "c.jsonl"), ("wiki", "wiki.json"), ("txt", "c.txt")])
def test_a_utf8_bom_is_skipped_in_every_format(tmp_path, fmt, name):
    f = tmp_path / name
    f.write_bytes(b"\xef\xbb\xbf" + _corpus_text(fmt).encode("utf-8"))
    c = load_corpus(f)
    assert c.fmt == fmt and all("\ufeff" not in p.text + p.id + p.title for p in c.passages)
    assert c.passages[0].text == PASSAGES[0]["text"]
    sq = squad_file(tmp_path / "sq.json")
    plain = load_questions(sq)
    sq.write_bytes(b"\xef\xbb\xbf" + sq.read_bytes())
    assert load_corpus(sq).fmt == "squad" and load_questions(sq) == plain
    qs = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    qs.write_bytes(b"\xef\xbb\xbf" + qs.read_bytes())
    assert load_questions(qs)[0].id == "q1"


def test_question_files_take_encoding_on_evaluate_and_predict(corpus_file, tmp_path):
    odqa("index", corpus_file, "--name", "mini", cwd=tmp_path)
    qs = tmp_path / "q.jsonl"
    qs.write_bytes("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUESTIONS).encode("cp949"))
    for argv in (["evaluate", "retrieval", "--index", "mini", "--questions", qs],
                 ["evaluate", "--index", "mini", "--reader", "none", "--questions", qs],
                 ["predict", qs, "--index", "mini", "--reader", "none", "--out", tmp_path / "p.json"]):
        p = odqa(*argv, cwd=tmp_path, check=False)
        assert p.returncode == 3 and "--encoding cp949" in one_line(p), argv
    rep = json.loads(odqa("evaluate", "retrieval", "--index", "mini", "--questions", qs, "--encoding", "cp949",
                          "--json", cwd=tmp_path).stdout)
    assert rep["metrics"]["questions"] == 5 and rep["questions"] == str(qs)
    odqa("predict", qs, "--index", "mini", "--reader", "none", "--out", tmp_path / "p.json", "--encoding", "cp949",
         cwd=tmp_path)
    assert set(json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))) == {q["id"] for q in QUESTIONS}
    p = odqa("index", corpus_file, "--name", "x", "--encoding", "nope", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "unknown encoding 'nope'" in one_line(p)


# ------------------------------------------------------------------ counted drops, long passages
def test_rows_without_text_are_counted_in_the_summary_and_the_json(tmp_path):
    f = write_jsonl(tmp_path / "c.jsonl", PASSAGES + [{"id": "e1", "text": ""}, {"id": "e2", "text": " \n\t"}])
    assert load_corpus(f).n_empty == 2
    text = odqa("index", f, "--name", "a", cwd=tmp_path).stdout
    assert "1 duplicates merged, 2 empty skipped" in text
    m = json.loads(odqa("index", f, "--name", "b", "--json", cwd=tmp_path).stdout)["manifest"]["corpus"]
    assert m["empty_skipped"] == 2 and m["duplicates_merged"] == 1 and m["passages"] == 5


@pytest.fixture
def odqa_warnings():
    """Warnings logged under `odqa` (the CLI stops them propagating to the root logger, so caplog
    would miss them once a test has run the CLI)."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    log = logging.getLogger("odqa")
    log.addHandler(handler)
    yield records
    log.removeHandler(handler)


def test_a_passage_far_longer_than_the_rest_is_warned_about_once(tmp_path, odqa_warnings):
    rows = [{"id": f"p{i}", "text": f"{i}번째 짧은 문단이다."} for i in range(5)]
    rows.append({"id": "huge", "text": "긴 문단이다. " * 20_000})
    f = write_jsonl(tmp_path / "c.jsonl", rows)
    load_corpus(f)
    assert len(odqa_warnings) == 1 and "'huge'" in odqa_warnings[0]
    assert "--set corpus.chunk_size=1000" in odqa_warnings[0]
    load_corpus(write_jsonl(tmp_path / "d.jsonl", rows[:5]))
    load_corpus(f, chunk_size=1000)                                        # already chunked: nothing to say
    assert len(odqa_warnings) == 1
