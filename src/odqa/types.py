"""Small value types shared by every room of odqa."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Passage:
    """A passage of a corpus: its `id` (unique in the index), `title`, `text` and the `doc_id` of the
    document it came from (a chunked document gives several passages)."""
    id: str
    title: str
    text: str
    doc_id: str = ""
    # the corpus's metadata fields of the passage (source, date, ...), what filters match on
    metadata: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Hit:
    """A retrieved passage: its `score`, 1-based `rank` and `source` (sparse | dense | hybrid | rerank)."""
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
    """An answer span, from the reader's post-processing to the API's results (one type all the way)."""
    text: str
    passage_id: str
    start: int                 # character offsets into the passage text, end exclusive
    end: int
    score: float               # start logit + end logit (+ mixed retrieval score)
    probability: float = 0.0
    retrieval_score: float = 0.0

    def to_json(self) -> dict:
        return {"text": self.text, "passage_id": self.passage_id, "start": self.start, "end": self.end,
                "probability": round(self.probability, 6), "score": round(self.score, 4)}
