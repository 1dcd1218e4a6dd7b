"""odqa in Haystack: `OdqaRetriever` (query -> documents of an odqa index) and `OdqaReader` (query + documents
-> ExtractedAnswers, read by odqa's span reader), components that run in a `haystack.Pipeline` and
serialise with it (to_dict / from_dict, YAML). Needs the `haystack` extra: pip install "odqa[haystack]".

    from haystack import Pipeline
    from odqa.integrations.haystack import OdqaReader, OdqaRetriever
    p = Pipeline()
    p.add_component("retriever", OdqaRetriever("demo", mode="sparse"))
    p.add_component("reader", OdqaReader())
    p.connect("retriever.documents", "reader.documents")
    p.run({"retriever": {"query": q}, "reader": {"query": q}})["reader"]["answers"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from odqa.integrations.extras import require

require("haystack", "haystack")

from haystack import Document, component, default_from_dict, default_to_dict  # noqa: E402
from haystack.dataclasses import ExtractedAnswer  # noqa: E402

from odqa.api import Pipeline, hit_record, hits_from_records  # noqa: E402
from odqa.integrations.loading import in_mode, pipeline_of  # noqa: E402

try:        # Haystack 3 loads components only from trusted modules: these two hold names and settings only
    from haystack.core.serialization import allow_deserialization_module
    allow_deserialization_module(__name__)
except ImportError:       # Haystack 2 has no allowlist
    pass


OWN = ("title", "rank", "retriever", "doc_id", "index")       # odqa's keys in a Document's meta


def as_document(hit, index: str | None) -> Document:
    """A retrieved passage as a Haystack Document: id, text as content, retrieval score as score; in meta the
    corpus's metadata fields, then title, rank, retriever (sparse | dense | hybrid | rerank), doc_id and index."""
    rec = hit_record(hit)
    return Document(id=rec["id"], content=rec["text"], score=rec["score"],
                    meta={**rec["metadata"], "title": rec["title"], "rank": rec["rank"], "retriever": rec["retriever"],
                          "doc_id": rec["doc_id"], "index": index})


def as_record(doc: Document, position: int) -> dict[str, Any]:
    """A Haystack Document as odqa reads it (a document from elsewhere needs content; its score counts as a
    retrieval score, 0 when it has none)."""
    meta = doc.meta or {}
    return {"id": doc.id, "title": meta.get("title", ""), "text": doc.content, "score": doc.score,
            "rank": meta.get("rank", position), "retriever": meta.get("retriever"), "doc_id": meta.get("doc_id", ""),
            "metadata": {k: v for k, v in meta.items() if k not in OWN}}


@component
class OdqaRetriever:
    """The passages of an odqa index for a query, best first (passages that match no query term left out)."""

    def __init__(self, index: str, mode: Optional[str] = None, top_k: Optional[int] = None,
                 filters: Optional[list[str] | dict[str, Any]] = None, index_dir: Optional[str] = None,
                 settings: Optional[dict[str, Any]] = None):
        """index: the index name; mode: auto | sparse | dense | hybrid; top_k: passages returned (default: the
        pipeline's k); filters: metadata filters ("source=wiki", a list of them, or a dict; a run's own replace
        them); settings: other `odqa.Pipeline.from_index` settings by name (alpha, fusion, device, ...)."""
        self.index, self.mode, self.top_k, self.filters = index, mode, top_k, filters
        self.index_dir = str(index_dir) if index_dir is not None else None
        self.settings = dict(settings or {})
        self._pipeline: Pipeline | None = None

    def warm_up(self) -> None:
        """Load the index (once)."""
        if self._pipeline is None:
            self._pipeline = in_mode(pipeline_of(self.index, self.index_dir, **self.settings), self.mode)

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: Optional[int] = None,
            filters: Optional[list[str] | dict[str, Any]] = None) -> dict[str, list[Document]]:
        self.warm_up()
        hits = self._pipeline.passages_to_read([query], top_k or self.top_k,
                                               filters if filters is not None else self.filters)[0]
        return {"documents": [as_document(h, self.index) for h in hits]}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, index=self.index, mode=self.mode, top_k=self.top_k, filters=self.filters,
                               index_dir=self.index_dir, settings=self.settings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OdqaRetriever":
        return default_from_dict(cls, data)


@component
class OdqaReader:
    """Answer spans read from exactly the documents given, best first (odqa's span reader: `ko-reader` by
    default); an answer's score is its probability, its document the one it was read from."""

    def __init__(self, reader: Optional[str | list[str]] = None, top_k: Optional[int] = None,
                 settings: Optional[dict[str, Any]] = None):
        """reader: a shipped model or checkpoint folder (several: soft-voted); top_k: answers returned (default:
        the pipeline's n_best); settings: other reader settings by name (retrieval_weight, particles, device,
        reader_runtime, min_probability, ...)."""
        self.reader = [str(r) for r in reader] if isinstance(reader, (list, tuple)) else (
            str(reader) if isinstance(reader, (str, Path)) else None)
        self.top_k, self.settings = top_k, dict(settings or {})
        self._pipeline: Pipeline | None = None

    def warm_up(self) -> None:
        """Load the reader (once)."""
        if self._pipeline is None:
            self._pipeline = Pipeline.from_reader(self.reader, **self.settings)

    @component.output_types(answers=list[ExtractedAnswer])
    def run(self, query: str, documents: list[Document], top_k: Optional[int] = None) -> dict[str, list[ExtractedAnswer]]:
        self.warm_up()
        docs = [d for d in documents if d.content]
        by_id = {d.id: d for d in docs}
        result = self._pipeline.ask_passages(query, hits_from_records(as_record(d, i) for i, d in enumerate(docs, 1)))
        answers = [ExtractedAnswer(query=query, score=a.probability, data=a.text, document=by_id.get(a.passage_id),
                                   document_offset=ExtractedAnswer.Span(a.start, a.end),
                                   meta={"span_score": a.score, "abstained": i == 0 and result.abstained})
                   for i, a in enumerate(result.answers[:top_k or self.top_k or len(result.answers)])]
        return {"answers": answers}

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, reader=self.reader, top_k=self.top_k, settings=self.settings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OdqaReader":
        return default_from_dict(cls, data)
