"""The cross-encoder reranker: training on the shared loop, reranking in the pipeline, its stage in the
evaluation report, bad folders."""

from __future__ import annotations

import json

import pytest

from odqa.errors import ModelError, OdqaError
from odqa.evaluation.answers import lost_at
from odqa.types import Hit, Passage, Question
from tests.conftest import PASSAGES, squad_file, write_jsonl


def _request(tiny, tmp_path, **kw):
    from odqa.api.training import RerankerTrainRequest
    train = squad_file(tmp_path / "train.json")
    pool = write_jsonl(tmp_path / "pool.jsonl", PASSAGES)
    base = dict(train_files=[train], out=tmp_path / "rr", pool=[pool], backbone=str(tiny), max_length=48,
                negatives=2, negative_depth=4, holdout=0.0, eval_candidates=4,
                train={"max_steps": 4, "eval_every": 2, "batch_size": 2, "lr": 1e-3})
    base.update(kw)
    return RerankerTrainRequest(**base)


def test_train_reranker_saves_a_checkpoint_and_resumes(tiny, tmp_path):
    from odqa.api.training import train_reranker
    from odqa.reranker.model import load_reranker
    res = train_reranker(_request(tiny, tmp_path))
    assert res.steps == 4 and res.train_questions == 9 and res.miner.startswith("bm25")
    assert (tmp_path / "rr" / "best" / "odqa_checksums.json").exists()
    rows = [json.loads(x) for x in (tmp_path / "rr" / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    again = train_reranker(_request(tiny, tmp_path, resume=True, train={"max_steps": 6, "eval_every": 2,
                                                                         "batch_size": 2, "lr": 1e-3}))
    assert again.steps == 6
    ce = load_reranker(tmp_path / "rr" / "best")
    hits = [Hit(Passage(p["id"], p["title"], p["text"]), 1.0 / (i + 1), i + 1) for i, p in enumerate(PASSAGES[:4])]
    out = ce.rerank(["훈민정음을 창제한 임금은?"], [hits], 2)[0]
    assert [h.rank for h in out] == [1, 2] and all(h.source == "rerank" for h in out)
    assert out[0].score >= out[1].score
    assert {h.passage.id for h in out} <= {h.passage.id for h in hits}


def test_training_puts_a_planted_positive_first(tiny, tmp_path):
    """Trained on one planted question, its gold passage outranks every passage it was contrasted with."""
    from odqa.api.training import train_reranker
    from odqa.reranker.model import load_reranker
    gold = PASSAGES[2]
    q = "훈민정음을 창제한 임금은?"
    data = {"data": [{"title": gold["title"], "paragraphs": [{"context": gold["text"], "qas": [
        {"id": "planted", "question": q, "answers": [{"text": "세종대왕", "answer_start": 0}]}]}]}]}
    train = tmp_path / "planted.json"
    train.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    res = train_reranker(_request(tiny, tmp_path, train_files=[train], negatives=3,
                                  train={"max_steps": 30, "eval_every": 30, "batch_size": 1, "lr": 3e-3}))
    assert res.steps == 30
    ce = load_reranker(tmp_path / "rr" / "best")
    hits = [Hit(Passage(p["id"], p["title"], p["text"]), 1.0, i + 1) for i, p in enumerate(PASSAGES[:5])]
    assert ce.rerank([q], [hits], 1)[0][0].passage.id == gold["id"]


def test_bad_reranker_folder_is_one_line(tmp_path, tiny):
    from odqa.reranker.model import load_reranker
    with pytest.raises(ModelError, match="not found"):
        load_reranker(tmp_path / "nope")
    with pytest.raises(ModelError, match="not a reranker checkpoint"):
        load_reranker(tiny)                       # a backbone folder, no head


def test_lost_at_rerank_when_the_reranker_dropped_the_gold_passage():
    q = Question("q", "질문", answers=["답"], gold_ids=["g"])
    gold, other = Passage("g", "", "답이 있다"), Passage("x", "", "다른 글")
    retrieved = [Hit(gold, 2.0, 1), Hit(other, 1.0, 2)]
    read = [Hit(other, 5.0, 1, "rerank")]
    assert lost_at(q, [], read, {"g"}, retrieved) == "rerank"
    assert lost_at(q, [], read, {"g"}, [Hit(other, 1.0, 1)]) == "retrieval"
    assert lost_at(q, [], read, {"g"}) == "retrieval"           # without a reranker: as before


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A reranker trained a few steps, and a sparse index of the test passages."""
    import odqa
    from odqa.api.training import train_reranker
    tmp = tmp_path_factory.mktemp("rr")
    train_reranker(_request(tiny, tmp, train={"max_steps": 2, "eval_every": 2, "batch_size": 2}))
    odqa.build_index(write_jsonl(tmp / "corpus.jsonl", PASSAGES), "t", None, [], index_dir=tmp / "indexes", quiet=True)
    return tmp


def test_pipeline_reranks_between_retrieval_and_reading(trained, tmp_path):
    from odqa.api.evaluation import evaluate_answers
    from odqa.api.pipeline import Pipeline
    from tests.conftest import QUESTIONS
    pipe = Pipeline.from_index("t", reader="none", k=2, index_dir=trained / "indexes",
                               reranker=trained / "rr" / "best", rerank=5)
    res = pipe.ask("훈민정음을 창제한 임금은?")
    assert len(res.hits) <= 2 and all(h.source == "rerank" for h in res.hits)
    assert {"retrieve", "rerank", "read"} <= set(res.timings) and res.timings["rerank"] > 0
    qfile = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    rep = evaluate_answers(pipe, qfile, out=tmp_path / "eval")
    m = rep.metrics
    assert m["setting"]["rerank"] == 5 and m["setting"]["reranker"].endswith("best")
    assert "rerank" in m["stages"] and sum(m["stages"].values()) == len(QUESTIONS)
    assert "recall@1" in m["retrieval_before_rerank"] and "recall@1" in m["retrieval"]
    assert "rerank" in m["seconds_per_question"]
    # a question whose gold passage the reranker dropped is lost at 'rerank', no other one is
    stages = json.loads((tmp_path / "eval" / "stages.json").read_text())
    plain = Pipeline.from_index("t", reader="none", k=5, index_dir=trained / "indexes")
    before = {q: [h.passage.id for h in hs] for q, hs in zip([q["id"] for q in QUESTIONS],
                                                             plain.candidates([q["question"] for q in QUESTIONS]))}
    after = {q: [h.passage.id for h in pipe.ask(x["question"]).hits] for q, x in zip(before, QUESTIONS)}
    for x in QUESTIONS:
        gold = set(x["gold_ids"])
        dropped = bool(gold & set(before[x["id"]])) and not gold & set(after[x["id"]])
        assert (stages[x["id"]] == "rerank") == dropped


def test_rerank_options_are_checked(trained):
    from odqa.api.pipeline import Pipeline
    with pytest.raises(OdqaError, match="needs a reranker"):
        Pipeline.from_index("t", reader="none", index_dir=trained / "indexes", rerank=10)
    with pytest.raises(OdqaError, match="at least `k`"):
        Pipeline.from_index("t", reader="none", k=5, index_dir=trained / "indexes",
                            reranker=trained / "rr" / "best", rerank=3)


def test_cli_ask_with_reranker_and_a_bad_folder(trained, tmp_path):
    from tests.test_cli import odqa
    p = odqa("ask", "훈민정음을 창제한 임금은?", "--index", "t", "--index-dir", trained / "indexes", "--reader", "none",
             "-k", "2", "--reranker", trained / "rr" / "best", "--rerank", "4", "--json", cwd=tmp_path)
    out = json.loads(p.stdout)
    assert out["rerank"] == 4 and "rerank" in out["timings"]
    bad = odqa("ask", "질문", "--index", "t", "--index-dir", trained / "indexes", "--reader", "none",
               "--reranker", tmp_path, cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "not a reranker checkpoint" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_cli_train_reranker_json(tiny, tmp_path):
    from tests.test_cli import odqa
    train = squad_file(tmp_path / "train.json")
    pool = write_jsonl(tmp_path / "pool.jsonl", PASSAGES)
    p = odqa("train", "reranker", "--train", train, "--pool", pool, "--out", tmp_path / "rr", "--backbone", tiny,
             "--max-length", "48", "--negatives", "2", "--max-steps", "2", "--batch-size", "2", "--holdout", "0.3",
             "--eval-candidates", "3", "--json", cwd=tmp_path)
    out = json.loads(p.stdout)
    assert out["steps"] == 2 and out["heldout_questions"] > 0 and out["eval_questions"] == out["heldout_questions"]
    assert set(out["last_eval"]) >= {"recall@1", "recall@3", "retrieval_recall@1"}
    assert (tmp_path / "rr" / "best" / "heldout_questions.jsonl").exists()
    bad = odqa("train", "reranker", "--train", tmp_path / "missing.json", "--out", tmp_path / "x", cwd=tmp_path,
               check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
