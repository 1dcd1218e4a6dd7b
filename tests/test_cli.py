import contextlib
import io
import json
import os
import subprocess
import sys

import pytest


def odqa(*args, cwd, check=True):
    """Run `odqa ARGS` in this process (as the console script would), from folder `cwd`:
    a CompletedProcess with the exit code, stdout and stderr."""
    from odqa.cli.main import main
    out, err = io.StringIO(), io.StringIO()
    argv, here = sys.argv, os.getcwd()
    sys.argv = ["odqa", *map(str, args)]
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        os.chdir(here)
    p = subprocess.CompletedProcess(["odqa", *args], code, out.getvalue(), err.getvalue())
    if check and p.returncode != 0:
        raise AssertionError(f"odqa {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def odqa_process(*args, cwd, check=True):
    """`python -m odqa ARGS` in a new process (what a shell user runs)."""
    env = {**os.environ, "ODQA_QUIET": "1"}
    p = subprocess.run([sys.executable, "-m", "odqa", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"odqa {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def test_a_real_process_prints_usage_errors_versions_and_one_line_errors(tmp_path):
    p = odqa_process("--version", cwd=tmp_path)
    assert p.stdout.strip().startswith("odqa ") and p.returncode == 0
    for argv in (["bogus"], ["ask"], ["retrieve", "질문", "--index", "x", "-k", "0"]):
        p = odqa_process(*argv, cwd=tmp_path, check=False)
        assert p.returncode == 2 and "Traceback" not in p.stderr and "Usage:" in p.stderr, (argv, p.stderr)
    p = odqa_process("retrieve", "질문", "--index", "nope", cwd=tmp_path, check=False)
    assert p.returncode == 4 and len(p.stderr.strip().splitlines()) == 1


def test_index_retrieve_evaluate_end_to_end(corpus_file, questions_file, tmp_path):
    out = json.loads(odqa("index", corpus_file, "--name", "mini", "--json", cwd=tmp_path).stdout)
    assert out["status"] == "built" and out["manifest"]["corpus"]["passages"] == 5
    assert (tmp_path / "indexes" / "mini" / "manifest.json").exists()
    again = json.loads(odqa("index", corpus_file, "--name", "mini", "--json", cwd=tmp_path).stdout)
    assert again["status"] == "up-to-date"

    hits = json.loads(odqa("retrieve", "훈민정음을 만든 임금은?", "--index", "mini", "-k", "2", "--json",
                           cwd=tmp_path).stdout)
    assert hits["hits"][0]["id"] == "p3" and len(hits["hits"]) <= 2
    assert set(hits["hits"][0]) == {"rank", "score", "id", "title", "doc_id", "text", "source"}
    text = odqa("retrieve", "거북선", "--index", "mini", cwd=tmp_path).stdout
    assert "이순신" in text

    dump = tmp_path / "dump.jsonl"
    rep = json.loads(odqa("evaluate", "retrieval", "--index", "mini", "--questions", questions_file,
                          "--dump", dump, "--json", cwd=tmp_path).stdout)
    m = rep["metrics"]
    assert m["questions"] == 5 and m["judged_by"]["id"] == 5  # q5's gold p6 is an alias of p1
    assert m["recall@1"] >= 0.8 and m["recall@5"] == 1.0 and 0 < m["mrr"] <= 1
    rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"] and all(r["rank"] for r in rows)

    sweep = json.loads(odqa("evaluate", "retrieval", "--index", "mini", "--questions", questions_file,
                            "--sweep", "k1=0.5,1.2,b=0.3,0.75", "--json", cwd=tmp_path).stdout)
    assert len(sweep["rows"]) == 4 and sweep["best"]["params"].keys() == {"k1", "b"}


def test_bad_input_gives_one_line_errors(corpus_file, tmp_path):
    p = odqa("retrieve", "질문", "--index", "nope", cwd=tmp_path, check=False)
    assert p.returncode == 4          # IndexNotFound
    assert p.stderr.strip() == ("odqa: error: index 'nope' not found in indexes/: build it with "
                                "`odqa index CORPUS --name nope`")
    odqa("index", corpus_file, "--name", "mini", cwd=tmp_path)
    p = odqa("retrieve", "   ", "--index", "mini", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "query 1 is empty" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "가"}\n{"id": 2\n', encoding="utf-8")
    p = odqa("index", bad, "--name", "bad", cwd=tmp_path, check=False)
    assert p.returncode == 3 and f"{bad}:2: malformed JSON line" in p.stderr     # CorpusError
    p = odqa("index", corpus_file, "--name", "x", "--set", "bm25.k1=abc", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "bm25.k1" in p.stderr


@pytest.mark.parametrize("cmd", [["index"], ["retrieve"], ["evaluate", "retrieval"], ["demo"], ["ask"], ["evaluate"],
                                 ["train", "reader"], ["train", "retriever"]])
def test_help_shows_an_example(cmd, tmp_path):
    assert "Example: odqa" in odqa(*cmd, "--help", cwd=tmp_path).stdout


def test_demo_runs_offline_on_bundled_corpus(tmp_path):
    from odqa.api.readers import DEFAULT_READER
    from odqa.modeling.shipped import find_shipped
    out = json.loads(odqa("demo", "--json", cwd=tmp_path).stdout)
    assert out["metrics"]["questions"] >= 20 and out["metrics"]["recall@5"] >= 0.9
    assert out["answers"]["questions"] == out["metrics"]["questions"] and out["answers"]["scored"] >= 20
    ex = out["examples"][0]
    shipped = find_shipped(DEFAULT_READER, "reader") is not None       # the default reader, when installed
    assert ex["hits"] and out["sentence_level"] is not shipped and out["reader"] == ([DEFAULT_READER] if shipped else [])
    best = ex["answers"][0]
    passage = next(h for h in ex["hits"] if h["id"] == best["passage_id"])
    assert passage["text"][best["start"]:best["end"]] == best["text"]
    assert any(g in a["text"] for e in out["examples"] for a in e["answers"][:1] for g in e["gold"])


def test_predict_writes_the_submission_shape(corpus_file, tmp_path):
    odqa("index", corpus_file, "--name", "mini", cwd=tmp_path)
    qs = tmp_path / "test.jsonl"
    qs.write_text('{"id": "t1", "question": "거북선으로 왜군을 물리친 무신은?"}\n{"id": "t2", "question": "김치는?"}\n',
                  encoding="utf-8")
    rep = json.loads(odqa("predict", qs, "--index", "mini", "--out", tmp_path / "p.json", "--reader", "none",
                          "--json", cwd=tmp_path).stdout)
    preds = json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))
    assert rep["questions"] == 2 and set(preds) == {"t1", "t2"} and rep["sentence_level"]
    assert "이순신" in preds["t1"]          # the sentence-level answer holds the evidence
    p = odqa("predict", qs, cwd=tmp_path, check=False)
    assert p.returncode == 2 and "give --index" in p.stderr
