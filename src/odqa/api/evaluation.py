"""Answers scored (EM/F1, KorQuAD rules), open or closed domain, and predictions for questions without answers.

The one evaluation path: `odqa evaluate`, `odqa demo` and Python callers all come here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from odqa.api.indexes import Questions, as_questions, questions_label
from odqa.api.pipeline import Pipeline
from odqa.atomic import AtomicFolder
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.evaluation.answers import closed_hits, score_answers

BATCH = 64


@dataclass
class AnswerReport:
    """What `evaluate_answers` measured: `metrics` (the `odqa evaluate --json` object), the best answer of
    each question (`predictions`), its n-best list (`nbest`) and the stage where each was lost (`stages`);
    `write(folder)` saves them as `odqa evaluate --out` does."""
    metrics: dict                    # questions, em, f1, scored, no_answer, [retrieval], setting, seconds...
    predictions: dict[str, str]      # question id -> best answer text
    nbest: dict[str, list[dict]] = field(repr=False, default_factory=dict)
    stages: dict[str, str] = field(repr=False, default_factory=dict)   # question id -> where it was lost (evaluation.answers.lost_at)

    def to_json(self) -> dict:
        return self.metrics

    def write(self, out: str | Path) -> Path:
        """predictions.json, nbest.json, stages.json and metrics.json in folder `out` (written aside, then renamed)."""
        with AtomicFolder(Path(out)) as tmp:
            for name, data in (("predictions.json", self.predictions), ("nbest.json", self.nbest),
                               ("stages.json", self.stages), ("metrics.json", self.metrics)):
                (tmp / name).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        return Path(out)


def _answer(pipeline: Pipeline, qs, closed: bool, k: int | None, quiet: bool):
    """(hits, answers, seconds, retrieved) for each question: retrieved (or gold) passages, reranked when the
    pipeline has a reranker (`retrieved`: its candidates, else None), then read."""
    texts = [q.question for q in qs]
    t0 = time.perf_counter()
    retrieved = None
    if closed:
        hits = closed_hits(qs)
    else:
        hits = []
        with bar(len(texts), "retrieving", "question", quiet) as pb:
            for b in range(0, len(texts), BATCH):
                hits += pipeline.candidates(texts[b:b + BATCH], k)
                pb.update(len(texts[b:b + BATCH]))
    t1 = time.perf_counter()
    seconds = {"retrieve": t1 - t0}
    if not closed and pipeline.reranker is not None:
        retrieved, hits = hits, []
        with bar(len(texts), "reranking", "question", quiet) as pb:
            for b in range(0, len(texts), BATCH):
                hits += pipeline.rerank_hits(texts[b:b + BATCH], retrieved[b:b + BATCH], k)
                pb.update(len(texts[b:b + BATCH]))
        seconds["rerank"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    answers = pipeline.read(texts, hits, quiet=quiet)
    seconds["read"] = time.perf_counter() - t2
    return hits, answers, seconds, retrieved


def evaluate_answers(pipeline: Pipeline, questions: Questions, closed: bool = False, k: int | None = None,
                     limit: int = 0, out: str | Path | None = None, quiet: bool = True) -> AnswerReport:
    """EM/F1 of the pipeline's answers on questions with gold answers; retrieval recall alongside (open domain).

    closed: read each question's own passage (SQuAD/KorQuAD contexts) instead of retrieving."""
    from odqa.evaluation.retrieval import Judge
    qs = as_questions(questions, limit)
    if not closed and pipeline.retrieval is None:
        raise OdqaError("open-domain evaluation needs an index: Pipeline.from_index(name), or closed=True")
    k = k or pipeline.k
    hits, answers, seconds, retrieved = _answer(pipeline, qs, closed, k, quiet)
    judge = None if closed else Judge(pipeline.index.canonical, pipeline.index.passage_ids())
    rep = score_answers(qs, answers, None if closed else hits, judge, k, retrieved,
                        min_probability=pipeline.config.reader.min_probability)
    m = rep["metrics"]
    m["setting"] = {"closed": closed, "index": None if closed else pipeline.index.name,
                    "mode": None if closed else pipeline.mode, "k": None if closed else k,
                    "rerank": None if closed or pipeline.reranker is None else pipeline.rerank,
                    "reranker": None if closed or pipeline.reranker is None else pipeline.reranker.folder,
                    **pipeline.reader_settings, "sentence_level": pipeline.sentence_level,
                    "questions_file": questions_label(questions, qs)}
    timings = {"retrieve": seconds["retrieve"], "load_reader": pipeline.load_seconds.get("load_reader", 0.0),
               **({"rerank": seconds["rerank"]} if "rerank" in seconds else {}), "read": seconds["read"]}
    m["seconds"] = {s: round(v, 2) for s, v in timings.items()}
    m["seconds_per_question"] = {s: round(v / max(1, len(qs)), 4) for s, v in timings.items()}
    report = AnswerReport(m, rep["predictions"], rep["nbest"], rep["stages"])
    if out:
        report.write(out)
    return report


def predict(pipeline: Pipeline, questions: Questions, out: str | Path | None = None, closed: bool = False,
            k: int | None = None, quiet: bool = True) -> dict[str, str]:
    """Best answer per question id (answers not needed), the Boostcamp submission shape `{id: answer}`;
    written to `out` (a file path, e.g. predictions.json) when given."""
    qs = as_questions(questions)
    if not closed and pipeline.retrieval is None:
        raise OdqaError("predicting without an index needs closed=True (questions with their passages)")
    _, answers, _, _ = _answer(pipeline, qs, closed, k or pipeline.k, quiet)
    floor = pipeline.config.reader.min_probability     # below it: no answer ("")
    preds = {q.id: (a[0].text if a and a[0].probability >= floor else "") for q, a in zip(qs, answers)}
    if out:
        from odqa.reader.ensemble import write_json
        write_json(out, preds)
    return preds
