"""odqa in LangChain (langchain-core only): a retriever over a loaded index, and question answering as a
runnable and as a tool. Needs the `langchain` extra: pip install "odqa[langchain]".

    from odqa.integrations.langchain import OdqaQA, OdqaRetriever
    retriever = OdqaRetriever.from_index("demo", mode="sparse", k=3)
    docs = retriever.invoke("한라산의 높이는?")     # Documents: metadata id, title, score, rank, retriever, source, ...
    qa = OdqaQA(retriever.pipeline)
    qa.invoke("한라산의 높이는?")["answer"]          # the span; "evidence" is the Document it was read from
    tool = qa.as_tool()                           # a StructuredTool (korean_qa) for tool-calling models
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from odqa.integrations.extras import require

require("langchain_core", "langchain")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import Runnable, RunnableConfig  # noqa: E402
from langchain_core.tools import StructuredTool  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from odqa.api import Pipeline, QAResult, hit_record  # noqa: E402
from odqa.integrations.loading import in_mode, pipeline_of  # noqa: E402


def as_document(hit, index: str | None) -> Document:
    """A retrieved passage as a LangChain Document: its text, and in the metadata the corpus's own fields, then
    id, title, score, rank, retriever (sparse | dense | hybrid | rerank), doc_id, index, and source (the corpus's
    `source` field, else INDEX/DOC_ID)."""
    rec = hit_record(hit)
    fields = rec.pop("metadata")
    text = rec.pop("text")
    source = fields.get("source") or f"{index}/{rec['doc_id'] or rec['id']}"
    return Document(page_content=text, id=rec["id"], metadata={**fields, **rec, "index": index, "source": source})


class OdqaRetriever(BaseRetriever):
    """The passages of an odqa index for a query, best first (passages that match no query term left out)."""
    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Pipeline
    mode: Optional[str] = None        # auto | sparse | dense | hybrid (None: the pipeline's)
    k: Optional[int] = None           # passages returned (None: the pipeline's k)
    filters: Any = None               # metadata filters ("source=wiki", a list of them, or a dict); None: the pipeline's

    @classmethod
    def from_index(cls, name: str, mode: str | None = None, k: int | None = None, filters: Any = None,
                   index_dir: str | Path | None = None, **settings: Any) -> "OdqaRetriever":
        """Load index NAME once (settings: `Pipeline.from_index`'s; the reader loads only when `OdqaQA` asks)."""
        return cls(pipeline=pipeline_of(name, index_dir, **settings), mode=mode, k=k, filters=filters)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        pipe = in_mode(self.pipeline, self.mode)
        return [as_document(h, pipe.index.name) for h in pipe.passages_to_read([query], self.k, self.filters)[0]]


class QAInput(BaseModel):
    question: str = Field(description="The question, in Korean.")
    filters: Optional[list[str]] = Field(None, description='Metadata filters the passages must match, e.g. '
                                                           '["source=wiki", "year>=2000"].')


def answer_dict(result: QAResult, index: str | None) -> dict[str, Any]:
    """The span answer and its evidence: answer (None when nothing was found), probability, abstained,
    start/end (offsets into the evidence text), evidence (the Document read), alternatives."""
    best = result.answer
    hit = next((h for h in result.hits if best is not None and h.passage.id == best.passage_id), None)
    return {"question": result.question, "answer": best.text if best else None,
            "probability": best.probability if best else 0.0, "abstained": result.abstained,
            "start": best.start if best else None, "end": best.end if best else None,
            "evidence": as_document(hit, index) if hit is not None else None,
            "alternatives": [{"text": a.text, "probability": a.probability, "passage_id": a.passage_id}
                             for a in result.answers[1:]]}


class OdqaQA(Runnable[Any, dict]):
    """A question (a string, or {"question": ..., "filters": ...}) -> the span answer with its evidence (see
    `answer_dict`)."""

    def __init__(self, pipeline: Pipeline | str, k: int | None = None, filters: Any = None,
                 index_dir: str | Path | None = None, **settings: Any):
        """pipeline: a loaded `odqa.api.Pipeline`, or an index name loaded with `settings`; k: passages read;
        filters: metadata filters of every question (a question's own replace them)."""
        self.pipeline, self.k, self.filters = pipeline_of(pipeline, index_dir, **settings), k, filters

    def _answer(self, question: Any) -> dict:
        text = question.get("question") if isinstance(question, dict) else question
        filters = question.get("filters", self.filters) if isinstance(question, dict) else self.filters
        result = self.pipeline.ask(text, self.k, filters=filters)
        return answer_dict(result, self.pipeline.index.name if self.pipeline.index is not None else None)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict:
        return self._call_with_config(self._answer, input, config)

    def as_tool(self, name: str = "korean_qa", description: str | None = None, **_: Any) -> StructuredTool:
        """A tool for tool-calling models: the question in, the answer text, probability and evidence passage out (JSON)."""
        def korean_qa(question: str, filters: Optional[list[str]] = None) -> dict:
            out = self._answer({"question": question, "filters": filters if filters is not None else self.filters})
            ev = out["evidence"]
            return {**out, "evidence": {"id": ev.id, "title": ev.metadata["title"], "text": ev.page_content}
                    if ev is not None else None}
        return StructuredTool.from_function(
            korean_qa, name=name, args_schema=QAInput,
            description=description or "Answer a Korean question from an odqa index: a text span, its "
                                       "probability and the passage it was read from.")
