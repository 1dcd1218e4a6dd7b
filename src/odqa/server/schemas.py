"""The HTTP API's request and response bodies (what /docs shows), and their renderings of the API's results."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from pydantic.fields import FieldInfo

from odqa.api import Answer as AnswerSpan, Hit, QAResult

INDEX_NAME = r"^[A-Za-z0-9가-힣][A-Za-z0-9가-힣_.-]*$"   # one folder name: no '/', '\\' or leading '.'
Mode = Literal["auto", "sparse", "dense", "hybrid"]
# a character that str.strip() keeps, spelled out (regex engines disagree on what \\s holds)
NOT_BLANK = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


class RetrieveRequest(BaseModel):
    """Limits of a served app are set by `request_models` (the spec at /docs shows them)."""
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., pattern=NOT_BLANK, description="The question, in Korean.",
                          examples=["한라산의 높이는 몇 미터인가?"])
    index: Optional[str] = Field(None, pattern=INDEX_NAME, max_length=200,
                                 description="A served index (GET /v1/indexes); default: the first one.")
    k: Optional[int] = Field(None, ge=1, description="Passages retrieved (and read); default: the server's k.")
    mode: Optional[Mode] = Field(None, description="Retrieval mode; default: the server's mode.")
    filters: Optional[list[str]] = Field(None, max_length=32, description="Metadata filters, all of which must "
                                         "hold (field=value, field!=value, 'field in [a,b]', field>=2000, "
                                         "date<2024-01-01); default: the server's.",
                                         examples=[["source=wiki", "year>=2000"]])

    @field_validator("question", mode="before")
    @classmethod
    def _not_blank(cls, v):
        if isinstance(v, str) and not v.strip():
            raise ValueError("the question is empty: give a question with some words in it")
        return v.strip() if isinstance(v, str) else v

    @field_validator("k", "top", mode="before", check_fields=False)
    @classmethod
    def _whole_number(cls, v):
        """JSON numbers only (5 and 5.0, as JSON Schema's integer): not `true` or `"5"`."""
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError("must be a whole number")
        return v


class AskRequest(RetrieveRequest):
    top: Optional[int] = Field(None, ge=1, description="Answers returned (best + alternatives); default: the server's.")


def _bounded(base: type[BaseModel], name: str, **limits: dict) -> type[BaseModel]:
    """`base` with extra constraints on some fields (their other settings kept)."""
    fields = {f: (base.model_fields[f].annotation, FieldInfo.merge_field_infos(base.model_fields[f], Field(**extra)))
              for f, extra in limits.items()}
    return create_model(name, __base__=base, **fields)


def request_models(max_question_chars: int, max_k: int, max_top: int) -> tuple[type, type]:
    """The request bodies of a server with these limits: (retrieve, ask)."""
    q, k = {"max_length": max_question_chars}, {"le": max_k}
    return (_bounded(RetrieveRequest, "RetrieveRequest", question=q, k=k),
            _bounded(AskRequest, "AskRequest", question=q, k=k, top={"le": max_top}))


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

    @classmethod
    def of(cls, r: QAResult, a: AnswerSpan) -> "Answer":
        """The wire format of one of a result's answers (its passage's title added)."""
        return cls(**r.answer_json(a))


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
    abstained: bool = Field(description="No confident answer: none found, or the best one's probability below the "
                                        "served min_probability (the best guess is still answers[0]).")
    batch_size: int = Field(description="Questions answered together with this one (micro-batching).")
    timings: dict[str, float] = Field(description="Seconds per stage: queue, retrieve, read (this question's share "
                                                  "of its batch), the parts of retrieve and read that ran "
                                                  "(query_analysis, query_encoding, sparse_search, dense_search, "
                                                  "fusion, rerank, read_tokenize, read_model, read_postprocess), "
                                                  "total.")

    @classmethod
    def of(cls, r: QAResult, index: str, mode: str, top: int, reader: list[str], sentence_level: bool,
           batch_size: int, timings: dict[str, float]) -> "AskResponse":
        return cls(question=r.question, index=index, mode=mode, reader="+".join(reader) or None,
                   sentence_level=sentence_level, answers=[Answer.of(r, a) for a in r.answers[:top]],
                   abstained=r.abstained,
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
