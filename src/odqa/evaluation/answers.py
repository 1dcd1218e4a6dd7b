"""End-to-end QA evaluation: EM/F1 (KorQuAD rules) with retrieval recall alongside."""

from __future__ import annotations

from typing import Sequence

from odqa.calibration import calibration_report
from odqa.errors import OdqaError
from odqa.metrics import em_f1, exact_match, normalize_answer, recall_at_k
from odqa.text.normalize import normalize
from odqa.types import Answer, Hit, Passage, Question


def closed_hits(questions: Sequence[Question]) -> list[list[Hit]]:
    """Each question's own passage as its only hit (closed-domain reading)."""
    missing = [q.id for q in questions if not q.context]
    if missing:
        raise OdqaError(f"closed-domain reading needs each question's passage: question {missing[0]} has no "
                        f"context (use SQuAD/KorQuAD JSON or JSONL with a 'context' field)")
    return [[Hit(Passage(q.gold_ids[0] if q.gold_ids else q.id, "", q.context), 1.0, 1, "gold")] for q in questions]


STAGES = ("correct", "retrieval", "rerank", "passage", "span", "no_answer")


def lost_at(q: Question, answer: list[Answer], hits: Sequence[Hit], gold: set[str],
            retrieved: Sequence[Hit] | None = None) -> str:
    """Which stage lost question `q` (KorQuAD EM): `correct`; `retrieval` (no gold passage among the
    passages retrieved); `rerank` (a reranker was given the gold passage among the `retrieved` ones
    but kept none among the passages read); `no_answer`; `passage` (the reader answered from another
    passage); `span` (the right passage, a wrong span). With no known gold passage (closed domain, or
    ids not in the index) a wrong answer counts as `span`."""
    if answer and exact_match(normalize(answer[0].text), [normalize(a) for a in q.answers]):
        return "correct"
    read = {h.passage.id for h in hits}
    if gold and not gold & read:
        if retrieved is not None and gold & {h.passage.id for h in retrieved}:
            return "rerank"
        return "retrieval"
    if not answer:
        return "no_answer"
    return "span" if (answer[0].passage_id in gold if gold else True) else "passage"


SPAN_ERRORS = ("inside_gold", "contains_gold", "overlap", "disjoint")


def span_error(prediction: str, answers: Sequence[str]) -> str:
    """How a wrong span misses (KorQuAD normalisation): `inside_gold` (a part of a gold answer),
    `contains_gold` (a gold answer and more), `overlap` (shares characters with one), `disjoint`."""
    p = normalize_answer(prediction)
    golds = [normalize_answer(a) for a in answers]
    if p and any(p in g for g in golds):
        return "inside_gold"
    if any(g and g in p for g in golds):
        return "contains_gold"
    if p and any(set(p) & set(g) for g in golds):
        return "overlap"
    return "disjoint"


def abstention_report(probs: Sequence[float], correct: Sequence[bool], min_probability: float) -> dict:
    """Answers kept at `min_probability`: how many, and their EM (x100)."""
    kept = [c for p, c in zip(probs, correct) if p >= min_probability]
    return {"min_probability": min_probability, "answered": len(kept),
            "coverage": round(len(kept) / len(probs), 4) if probs else 0.0,
            "em_answered": round(100 * sum(kept) / len(kept), 2) if kept else 0.0}


def score_answers(questions: Sequence[Question], answers: Sequence[list[Answer]],
                  hits: Sequence[list[Hit]] | None = None, judge=None, k: int | None = None,
                  retrieved: Sequence[list[Hit]] | None = None, min_probability: float = 0.0) -> dict:
    """Report dict (`metrics`, `predictions`, `nbest`): EM/F1 over questions with gold answers;
    with `hits` and a `judge`, recall@k of the passages the reader saw; with `retrieved` (the passages
    a reranker chose `hits` from), their recall as `retrieval_before_rerank` and the `rerank` stage. Also: how
    the wrong spans miss (`span_errors`), how far the answer probability can be trusted (`calibration`: ECE,
    AUROC, EM at 25/50/75/100 % coverage) and, with `min_probability`, what is answered above it."""
    preds = {q.id: (a[0].text if a else "") for q, a in zip(questions, answers)}
    nbest = {q.id: [s.to_json() for s in a] for q, a in zip(questions, answers)}
    gold = {q.id: q.answers for q in questions if q.answers}
    # scored on normalised text (odqa.text.normalize): an NFD or full-width answer equals its NFC gold
    m = em_f1({i: normalize(t) for i, t in preds.items()}, {i: [normalize(a) for a in g] for i, g in gold.items()})
    metrics = {"questions": len(questions), "em": round(m["em"], 2), "f1": round(m["f1"], 2),
               "scored": m["count"], "no_answer": sum(1 for a in answers if not a)}
    stages = {}
    for i, (q, a) in enumerate(zip(questions, answers)):
        if q.answers:
            gold = judge.gold_set(q) if judge is not None else set()     # closed domain: no passage to choose
            stages[q.id] = lost_at(q, a, hits[i] if hits is not None else [], gold,
                                   retrieved[i] if retrieved is not None else None)
    metrics["stages"] = {s: sum(1 for v in stages.values() if v == s) for s in STAGES}
    scored = [(q, a) for q, a in zip(questions, answers) if q.answers]
    errors = [span_error(a[0].text, q.answers) for q, a in scored if stages[q.id] in ("span", "passage") and a]
    metrics["span_errors"] = {e: errors.count(e) for e in SPAN_ERRORS}
    probs = [a[0].probability if a else 0.0 for _, a in scored]
    correct = [stages[q.id] == "correct" for q, _ in scored]
    metrics["calibration"] = calibration_report(probs, correct)
    if min_probability > 0:
        metrics["abstention"] = abstention_report(probs, correct, min_probability)
    if hits is not None and judge is not None:
        ranks = [judge.first_relevant(q, h)[0] for q, h in zip(questions, hits)]
        ks = sorted({x for x in (1, 5, 10, 20) if x <= (k or 20)} | ({k} if k else set()))
        metrics["retrieval"] = {key: round(v, 4) for key, v in recall_at_k(ranks, ks).items()}
        if retrieved is not None:
            n = max(len(h) for h in retrieved) if retrieved else 0
            ranks = [judge.first_relevant(q, h)[0] for q, h in zip(questions, retrieved)]
            ks = sorted({x for x in (1, 3, 5, 10, 20) if x <= max(n, 1)} | ({n} if n else set()))
            metrics["retrieval_before_rerank"] = {key: round(v, 4) for key, v in recall_at_k(ranks, ks).items()}
    return {"metrics": metrics, "predictions": preds, "nbest": nbest, "stages": stages}
