"""Bad input: encodings, empty rows, long passages, offline model names,
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


def test_an_index_built_before_encodings_were_recorded_stays_up_to_date(corpus_file, tmp_path):
    odqa("index", corpus_file, "--name", "old", cwd=tmp_path)
    path = tmp_path / "indexes" / "old" / "manifest.json"
    m = json.loads(path.read_text(encoding="utf-8"))
    for key in ("encoding", "empty_skipped"):
        del m["corpus"][key]
    from odqa.index.manifest import write_manifest
    write_manifest(path.parent, m, rehash=False)          # as that odqa wrote it: its own checksum matches
    same = json.loads(odqa("index", corpus_file, "--name", "old", "--json", cwd=tmp_path).stdout)
    assert same["status"] == "up-to-date"
    other = json.loads(odqa("index", corpus_file, "--name", "old", "--encoding", "utf-8", "--json", cwd=tmp_path).stdout)
    assert other["status"] == "rebuilt" and other["changed"] == ["corpus"]


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


def test_lone_surrogates_from_json_escapes_are_read_as_replacement_characters(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "s\\ud800", "text": "한라산\\udc00은 제주도에 있다."}\n'
                 + "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in PASSAGES[1:4]), encoding="utf-8")
    out = json.loads(odqa("index", f, "--name", "s", "--json", cwd=tmp_path).stdout)
    assert out["manifest"]["corpus"]["passages"] == 4
    hits = json.loads(odqa("retrieve", "제주도", "--index", "s", "--json", cwd=tmp_path).stdout)["hits"]
    assert hits[0]["id"] == "s\ufffd" and hits[0]["text"] == "한라산\ufffd은 제주도에 있다."


# ------------------------------------------------------------------ models offline, incomplete folders
def _src() -> str:
    import odqa
    return os.path.dirname(os.path.dirname(odqa.__file__))


def test_a_hub_name_with_no_hub_fails_fast_with_one_line(corpus_file, tmp_path):
    """A real process, so the hub settings come from the environment: once with HF_HUB_OFFLINE=1 (the
    same work without asking the hub: the baseline), once with a hub nothing answers for; the second
    may take only a few seconds more (it took 49 s of retries before)."""
    odqa("index", corpus_file, "--name", "mini", cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(ODQA_QUIET="1", PYTHONPATH=_src(), HF_HOME=str(tmp_path / "hf"),
               HF_ENDPOINT="http://127.0.0.1:9")          # nothing listens there: the hub is unreachable
    argv = [sys.executable, "-m", "odqa", "ask", "질문", "--index", "mini", "--reader", "some/name"]
    took = {}
    for offline in ("1", ""):
        t0 = time.perf_counter()
        p = subprocess.run(argv, cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": offline} if offline else env,
                           capture_output=True, text=True, timeout=120)
        took[offline] = time.perf_counter() - t0
        assert p.returncode == 6, p.stderr
        why = "HF_HUB_OFFLINE is set" if offline else "the model hub is unreachable"
        assert one_line(p).startswith(f"odqa: error: model 'some/name' is not in the local cache and {why}: "
                                      f"download it on a connected machine")
    assert took[""] - took["1"] < 5, took


@pytest.mark.parametrize("argv", [["train", "reader", "--backbone", "x/y", "--train", "SQ", "--out", "run"],
                                  ["index", "CORPUS", "--name", "d", "--dense", "--encoder", "x/y"]])
def test_hub_names_of_backbones_and_encoders_fail_with_one_line_offline(corpus_file, tmp_path, monkeypatch, argv):
    from huggingface_hub import constants

    from odqa.modeling.pretrained import check_hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    check_hub.cache_clear()
    files = {"SQ": squad_file(tmp_path / "sq.json"), "CORPUS": corpus_file}
    p = odqa(*[files.get(a, a) for a in argv], cwd=tmp_path, check=False)
    check_hub.cache_clear()
    assert p.returncode == 6 and "model 'x/y' is not in the local cache and HF_HUB_OFFLINE is set" in one_line(p)


@pytest.fixture(scope="module")
def tiny_qa(tmp_path_factory):
    from transformers import BertConfig, BertForQuestionAnswering

    from tests.tiny_model import make_tiny_backbone
    folder = make_tiny_backbone(tmp_path_factory.mktemp("qa") / "qa")
    cfg = BertConfig.from_pretrained(folder)
    cfg.architectures = ["BertForQuestionAnswering"]
    BertForQuestionAnswering(cfg).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("missing", ["tokenizer.json", "model.safetensors"])
def test_an_incomplete_reader_folder_names_the_missing_file(corpus_file, tmp_path, tiny_qa, missing):
    import shutil
    folder = shutil.copytree(tiny_qa, tmp_path / "reader")
    odqa("index", corpus_file, "--name", "mini", cwd=tmp_path)
    odqa("ask", "백록담이 있는 산은?", "--index", "mini", "--reader", folder, cwd=tmp_path)   # complete: it answers
    (folder / missing).unlink()
    p = odqa("ask", "백록담이 있는 산은?", "--index", "mini", "--reader", folder, cwd=tmp_path, check=False)
    line = one_line(p)
    assert p.returncode == 6 and str(folder) in line and f"{missing} missing" in line, line


def test_an_odqa_checkpoint_without_its_tokenizer_names_it(tmp_path, tiny_qa):
    from odqa.errors import ModelError
    from odqa.modeling.checkpoint import HEAD_WEIGHTS, build_model, load_model, save_model
    from odqa.modeling.heads import HeadConfig
    tok, model = build_model(str(tiny_qa), "span", HeadConfig())
    save_model(model, tok, tmp_path / "ck", extra={"reader": {"window": {}}})
    (tmp_path / "ck" / "tokenizer.json").unlink()
    (tmp_path / "ck" / HEAD_WEIGHTS).unlink()
    with pytest.raises(ModelError, match=f"tokenizer.json and {HEAD_WEIGHTS} missing"):
        load_model(tmp_path / "ck", "span")


# ------------------------------------------------------------------ refused before anything loads
@pytest.fixture
def nothing_loads(monkeypatch):
    """Index and reader loading raise: a command that reaches them did not validate its input first."""
    def loaded(*a, **k):
        raise AssertionError("an index or a reader was loaded")
    monkeypatch.setattr("odqa.index.indexing.load_index", loaded)
    monkeypatch.setattr("odqa.api.indexes._load", loaded)
    monkeypatch.setattr("odqa.api.pipeline.open_reader", loaded)


def test_invalid_arguments_are_refused_before_anything_loads(tmp_path, nothing_loads):
    empty_q = write_jsonl(tmp_path / "e.jsonl", [QUESTIONS[0], {"id": "x", "question": "  "}])
    cases = [(["ask", "", "--index", "mini"], 2, "query 1 is empty"),
             (["ask", " \t", "--index", "mini"], 2, "query 1 is empty"),
             (["ask", "질문", "--index", "mini", "--reader", "/no/such/reader"], 6, "/no/such/reader: reader not found"),
             (["ask", "질문", "--index", "mini", "--particles", tmp_path / "no.json"], 6, "rules file not found"),
             (["evaluate", "--index", "mini", "--questions", tmp_path / "no.json"], 3, "questions file not found"),
             (["evaluate", "--closed", "--questions", tmp_path / "no.json"], 3, "questions file not found"),
             (["evaluate", "retrieval", "--index", "mini", "--questions", tmp_path / "no.json"], 3, "not found"),
             (["predict", tmp_path / "no.json", "--index", "mini"], 3, "questions file not found"),
             (["evaluate", "--index", "mini", "--questions", empty_q], 3, f"{empty_q}:2: empty question")]
    for argv, code, msg in cases:
        p = odqa(*argv, cwd=tmp_path, check=False)
        assert p.returncode == code and msg in one_line(p), (argv, p.stderr)
