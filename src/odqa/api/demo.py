"""The demo: index the bundled Korean corpus as 'demo', measure retrieval, answer some questions."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from odqa.api.evaluation import AnswerReport, evaluate_answers
from odqa.api.indexes import RetrievalReport, build_index, evaluate_retrieval
from odqa.api.pipeline import Pipeline, QAResult
from odqa.corpus import load_questions
from odqa.index.manifest import BuildResult
from odqa.types import Question

DEMO_INDEX = "demo"


def demo_file(name: str) -> Path:
    return Path(str(resources.files("odqa") / "data" / name))


@dataclass
class DemoResult:
    build: BuildResult
    retrieval: RetrievalReport
    pipeline: Pipeline
    questions: list[Question]        # the questions shown
    results: list[QAResult]
    answers: AnswerReport            # EM/F1 over all demo questions (open domain, the demo index)


def run_demo(reader=None, shown: int = 3, index_dir: str | Path | None = None, device: str = "auto") -> DemoResult:
    """Build (or reuse) the demo index, score sparse retrieval and answers (EM/F1) on all demo questions,
    and answer `shown` of them for display."""
    built = build_index(demo_file("demo_corpus.jsonl"), DEMO_INDEX, None, index_dir=index_dir, quiet=True, device=device)
    qs = load_questions(demo_file("demo_questions.jsonl"))
    pipe = Pipeline.from_index(DEMO_INDEX, reader=reader, mode="sparse", index_dir=index_dir, n_best=3,
                               device=device)
    report = evaluate_retrieval(pipe.index, qs, mode="sparse", k=10)
    asked = qs[:shown]
    return DemoResult(built, report, pipe, asked, pipe.ask_batch([q.question for q in asked]) if asked else [],
                      evaluate_answers(pipe, qs))
