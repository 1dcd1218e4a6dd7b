"""retrieve -> read -> answers, with per-stage timings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from odqa.reader.postprocess import Span
from odqa.retrieval.base import Retriever
from odqa.types import Hit


class SpanReader(Protocol):
    def read_batch(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Span]]: ...


@dataclass
class QAResult:
    question: str
    answers: list[Span]            # best first; empty = no answer found
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage (batch share)


class Pipeline:
    def __init__(self, retriever: Retriever, reader: SpanReader, k: int = 10):
        self.retriever, self.reader, self.k = retriever, reader, k

    def ask_batch(self, questions: list[str], quiet: bool = True, batch_size: int = 64) -> list[QAResult]:
        out: list[QAResult] = []
        for b in range(0, len(questions), batch_size):
            qs = questions[b:b + batch_size]
            t0 = time.perf_counter()
            hits = self.retriever.search(qs, self.k)
            t1 = time.perf_counter()
            hits = [[h for h in hs if h.score > 0 or h.source != "sparse"] for hs in hits]  # BM25 0 = no match
            spans = self.reader.read_batch(qs, hits, quiet=quiet)
            t2 = time.perf_counter()
            share = {"retrieve": (t1 - t0) / len(qs), "read": (t2 - t1) / len(qs)}
            out += [QAResult(q, s, h, dict(share)) for q, s, h in zip(qs, spans, hits)]
        return out

    def ask(self, question: str) -> QAResult:
        return self.ask_batch([question])[0]
