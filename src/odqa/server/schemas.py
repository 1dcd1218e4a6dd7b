"""The HTTP API's request and response bodies (what /docs shows), and their renderings of the API's results."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from odqa.api.pipeline import QAResult
from odqa.types import Hit

INDEX_NAME = r"^[A-Za-z0-9가-힣][A-Za-z0-9가-힣_.-]*$"   # one folder name: no '/', '\\' or leading '.'
Mode = Literal["auto", "sparse", "dense", "hybrid"]


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., description="The question, in Korean.", examples=["한라산의 높이는 몇 미터인가?"])
    index: Optional[str] = Field(None, pattern=INDEX_NAME, max_length=200,
                                 description="A served index (GET /v1/indexes); default: the first one.")
    k: Optional[int] = Field(None, ge=1, description="Passages retrieved (and read); default: the server's k.")
    mode: Optional[Mode] = Field(None, description="Retrieval mode; default: the server's mode.")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the question is empty: give a question with some words in it")
        return v.strip()


class AskRequest(RetrieveRequest):
    top: Optional[int] = Field(None, ge=1, description="Answers returned (best + alternatives); default: the server's.")


class Passage(BaseModel):
    rank: int
    id: str
    title: str
    doc_id: str
    text: str
    score: float
    source: str = Field(description="The retriever that found it: sparse, dense or hybrid.")

    @classmethod
    def of(cls, h: Hit) -> "Passage":
        p = h.passage
        return cls(rank=h.rank, id=p.id, title=p.title, doc_id=p.doc_id, text=p.text, score=round(h.score, 6),
                   source=h.source)


class Answer(BaseModel):
    text: str
    passage_id: str
    title: str
    start: int = Field(description="Character offset of the answer in its passage's text.")
    end: int = Field(description="Character offset just past the answer (exclusive).")
    probability: float
    score: float


class RetrieveResponse(BaseModel):
    question: str
    index: str
    mode: str
    passages: list[Passage]
    timings: dict[str, float] = Field(description="Seconds per stage (retrieve, total).")


class AskResponse(RetrieveResponse):
    reader: Optional[str] = Field(description="The reader(s) that answered; null = sentence-level evidence.")
    sentence_level: bool
    answers: list[Answer] = Field(description="Best first; empty = no answer found.")
    batch_size: int = Field(description="Questions answered together with this one (micro-batching).")
    timings: dict[str, float] = Field(description="Seconds per stage: queue, retrieve, read (this question's share "
                                                  "of its batch), total.")

    @classmethod
    def of(cls, r: QAResult, index: str, mode: str, top: int, reader: list[str], sentence_level: bool,
           batch_size: int, timings: dict[str, float]) -> "AskResponse":
        return cls(question=r.question, index=index, mode=mode, reader="+".join(reader) or None,
                   sentence_level=sentence_level, answers=[Answer(**r.answer_json(s)) for s in r.answers[:top]],
                   passages=[Passage.of(h) for h in r.hits], batch_size=batch_size,
                   timings={s: round(v, 6) for s, v in timings.items()})


class IndexInfo(BaseModel):
    name: str
    mode: str = Field(description="The default retrieval mode of requests to it.")
    modes: list[str] = Field(description="The modes it can serve.")
    passages: int
    reader: Optional[str]


class IndexList(BaseModel):
    default: str
    indexes: list[IndexInfo]


class Health(BaseModel):
    status: Literal["ready", "loading", "failed"]
    indexes: list[str]
    error: Optional[str] = None
    load_seconds: Optional[float] = None


class Error(BaseModel):
    error: str = Field(description="What went wrong, in plain words.")
    status: int
