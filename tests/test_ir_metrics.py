"""nDCG@10, MRR@10 and recall@100 of `odqa evaluate retrieval` equal ranx's on the TREC files odqa writes."""

import math

import pytest

from odqa.evaluation.retrieval import Judge, evaluate
from odqa.evaluation.trec import qrels_text, run_text
from odqa.errors import OdqaError
from odqa.metrics import ndcg_at, reciprocal_rank_at, set_recall_at
from odqa.types import Hit, Passage, Question
from tests.conftest import QUESTIONS, write_jsonl


def test_the_metrics_by_hand():
    # relevant at ranks 2 and 5 of a set of 3: DCG = 1/log2(3) + 1/log2(6), ideal = 1 + 1/log2(3) + 1/2
    assert ndcg_at([2, 5], 3, 10) == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / (1 + 1 / math.log2(3) + 0.5))
    assert ndcg_at([2, 12], 2, 10) == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert reciprocal_rank_at([4, 2], 10) == 0.5 and reciprocal_rank_at([11], 10) == 0.0
    assert set_recall_at([3, 150], 4, 100) == 0.25 and ndcg_at([], 0, 10) == 0.0


def _synthetic():
    """Twelve questions over 40 passages: one, two or three gold ids, answer-judged ones, some never found,
    scores all distinct (so every evaluator ranks as odqa does)."""
    passages = [Passage(f"d{i}", "", f"본문 {i} {'정답' if i % 7 == 3 else ''}") for i in range(40)]
    questions = []
    for n in range(12):
        gold = [f"d{(n * 5 + j * 11) % 40}" for j in range(1 + n % 3)]
        questions.append(Question(f"q{n}", f"질문 {n}", answers=["정답"], gold_ids=gold if n % 4 else ["x"]))

    def search(texts, k):
        out = []
        for t in texts:
            n = int(t.split()[1])
            order = sorted(passages, key=lambda p: (int(p.id[1:]) * (n + 3)) % 41)[:k]
            out.append([Hit(p, 100.0 - r - n / 100, r + 1) for r, p in enumerate(order)])
        return out
    return search, questions, Judge(lambda p: p, {p.id for p in passages})


def test_odqa_and_ranx_agree_to_4_decimals(tmp_path):
    ranx = pytest.importorskip("ranx", reason="ranx is a dev dependency: pip install -e '.[dev]'")
    search, questions, judge = _synthetic()
    for k in (15, 120):
        res = evaluate(search, questions, judge, k=k)
        (tmp_path / "run").write_text(run_text(res["run"], "t"), encoding="utf-8")
        (tmp_path / "qrels").write_text(qrels_text(res["qrels"]), encoding="utf-8")
        theirs = ranx.evaluate(ranx.Qrels.from_file(str(tmp_path / "qrels"), kind="trec"),
                               ranx.Run.from_file(str(tmp_path / "run"), kind="trec"),
                               ["ndcg@10", "mrr@10", "recall@100"], make_comparable=True)
        ours = res["metrics"]["trec"]
        assert ours["questions"] == len([q for q in res["qrels"].values() if q]) >= 9
        for m in ("ndcg@10", "mrr@10", "recall@100"):
            assert round(ours[m], 4) == round(float(theirs[m]), 4), (k, m, ours[m], theirs[m])
        assert 0 < ours["ndcg@10"] < 1 and 0 < ours["recall@100"] <= 1


def test_a_question_id_with_a_space_is_refused_in_a_trec_file():
    with pytest.raises(OdqaError, match="question id 'a b'"):
        run_text({"a b": [("p1", 1.0)]}, "t")


def test_cli_writes_the_trec_files_and_reports_the_metrics(cli, corpus_file, index_root, tmp_path):
    import json
    code, _, err = cli("index", corpus_file, "--name", "t", "--index-dir", index_root)
    assert code == 0, err
    qs = write_jsonl(tmp_path / "q.jsonl", QUESTIONS)
    run, qrels = tmp_path / "out" / "run.trec", tmp_path / "out" / "qrels.trec"
    code, out, err = cli("evaluate", "retrieval", "--index", "t", "--questions", qs, "--index-dir", index_root,
                         "--run-file", run, "--qrels-file", qrels, "-k", "3", "--json")
    assert code == 0, err
    m = json.loads(out)["metrics"]
    assert set(m["trec"]) == {"questions", "ndcg@10", "mrr@10", "recall@100"} and m["trec"]["questions"] == 5
    lines = run.read_text(encoding="utf-8").splitlines()
    first = lines[0].split()
    assert first[:2] == ["q1", "Q0"] and first[3] == "1" and first[5] == "odqa-sparse"
    assert len({ln.split()[0] for ln in lines}) == 5 and all(len(ln.split()) == 6 for ln in lines)
    rel = [ln.split() for ln in qrels.read_text(encoding="utf-8").splitlines()]
    assert ["q1", "0", "p1", "1"] in rel and len(rel) == 5
    # the reciprocal rank of q1's gold passage, as the run file ranks it, is odqa's mrr@10 share
    rank_q1 = next(int(ln.split()[3]) for ln in lines if ln.split()[0] == "q1" and ln.split()[2] == "p1")
    assert rank_q1 == 1
