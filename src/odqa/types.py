"""Small value types shared by every room of odqa."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str
    doc_id: str = ""


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float
    rank: int
    source: str = "sparse"


@dataclass
class Question:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    gold_ids: list[str] = field(default_factory=list)
    context: str = ""
    answer_starts: list[int] = field(default_factory=list)
    title: str = ""              # title of the context's article (SQuAD shape), when known


@dataclass(frozen=True)
class Answer:
    text: str
    score: float
    passage_id: str
    start: int
    end: int
