import pytest

from odqa.metrics import mrr, recall_at_k
from odqa.retrieval.evaluate import Judge, parse_sweep
from odqa.types import Hit, Passage, Question


def test_recall_and_mrr():
    ranks = [1, 3, None, 10]
    r = recall_at_k(ranks, [1, 5, 10])
    assert r == {"recall@1": 0.25, "recall@5": 0.5, "recall@10": 0.75}
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 0.1) / 4)


def test_judge_by_id_alias_then_by_answer():
    ps = [Passage("a", "", "한라산은 높다"), Passage("b", "", "백록담 은 정상에")]
    hits = [Hit(p, 1.0, i + 1) for i, p in enumerate(ps)]
    judge = Judge(lambda pid: {"dup": "b"}.get(pid, pid), {"a", "b"})
    assert judge.first_relevant(Question("1", "q", gold_ids=["dup"]), hits) == (2, "id")
    assert judge.first_relevant(Question("2", "q", answers=["백록담은"], gold_ids=["zz"]), hits) == (2, "answer")
    assert judge.first_relevant(Question("3", "q", answers=["없음"]), hits) == (None, "answer")


def test_parse_sweep():
    assert parse_sweep(["k1=0.9,1.2,b=0.5,0.75"]) == {"k1": [0.9, 1.2], "b": [0.5, 0.75]}
    assert parse_sweep(["k1=1", "b=0.3"]) == {"k1": [1.0], "b": [0.3]}
