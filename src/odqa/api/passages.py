"""Retrieved passages as plain records, and records back as hits: the one mapping the integrations
(LangChain, Haystack, MCP) build their document types from, so a passage round-trips unchanged.

    rec = hit_record(hit)          # {"id", "title", "text", "score", "rank", "retriever", "doc_id", "metadata"}
    hits = hits_from_records([rec, ...])
    result = pipeline.ask_passages(question, hits)      # read exactly these passages
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from odqa.errors import OdqaError
from odqa.types import Hit, Passage

FIELDS = ("id", "title", "text", "score", "rank", "retriever", "doc_id", "metadata")


def hit_record(hit: Hit) -> dict[str, Any]:
    """A hit as a record: passage id, title, text, document id and the corpus's metadata fields; retrieval
    score, rank (1 = best) and retriever (sparse | dense | hybrid | rerank: the stage that ranked it)."""
    p = hit.passage
    return {"id": p.id, "title": p.title, "text": p.text, "score": float(hit.score), "rank": hit.rank,
            "retriever": hit.source, "doc_id": p.doc_id, "metadata": dict(p.metadata)}


def hits_from_records(records: Iterable[Mapping[str, Any]]) -> list[Hit]:
    """Records back as hits, in the order given: `text` is needed; `id` defaults to the position, `rank` to
    the position (1-based), `score` to 0 and `retriever` to "given"."""
    hits = []
    for i, r in enumerate(records, 1):
        text = r.get("text")
        if not isinstance(text, str) or not text.strip():
            raise OdqaError(f"passage {i}: `text` is missing or empty")
        score = r.get("score")
        passage = Passage(str(r.get("id") or i), str(r.get("title") or ""), text, str(r.get("doc_id") or ""),
                          dict(r.get("metadata") or {}))
        hits.append(Hit(passage, float(score) if score is not None else 0.0, int(r.get("rank") or i),
                        str(r.get("retriever") or "given")))
    return hits
