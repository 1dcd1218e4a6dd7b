import pytest

from odqa.metrics import mrr, recall_at_k
from odqa.evaluation.retrieval import Judge, parse_sweep
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


def test_each_lost_question_is_charged_to_the_stage_that_lost_it():
    from odqa.evaluation.answers import lost_at, score_answers
    from odqa.types import Answer
    from odqa.evaluation.retrieval import Judge
    from odqa.types import Hit, Passage, Question
    q = Question("q", "한라산의 높이는?", answers=["1,947 m"], gold_ids=["g"])
    gold, other = Hit(Passage("g", "", "높이는 1,947 m이다"), 1.0, 1), Hit(Passage("o", "", "1,915 m"), 0.9, 2)
    right = Answer("1,947 m", "g", 4, 11, 1.0)
    assert lost_at(q, [right], [gold, other], {"g"}) == "correct"
    assert lost_at(q, [Answer("1,915 m", "o", 0, 7, 1.0)], [other], {"g"}) == "retrieval"
    assert lost_at(q, [Answer("1,915 m", "o", 0, 7, 1.0)], [gold, other], {"g"}) == "passage"
    assert lost_at(q, [Answer("높이는", "g", 0, 3, 1.0)], [gold, other], {"g"}) == "span"
    assert lost_at(q, [], [gold], {"g"}) == "no_answer"
    assert lost_at(q, [Answer("x", "g", 0, 1, 1.0)], [gold], set()) == "span"      # closed domain: no passage choice
    q2 = Question("q2", "?", answers=["1,915 m"], gold_ids=["o"])
    unscored = Question("q3", "?", answers=[])
    rep = score_answers([q, q2, unscored], [[right], [right], [right]], [[gold, other], [gold], [gold]],
                        Judge(lambda pid: pid, {"g", "o"}), 2)
    assert rep["stages"] == {"q": "correct", "q2": "retrieval"}
    assert rep["metrics"]["stages"] == {"correct": 1, "retrieval": 1, "rerank": 0, "passage": 0, "span": 0, "no_answer": 0}
