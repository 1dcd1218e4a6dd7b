"""`odqa retrieve`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.cli.common import (AlphaOpt, EncoderOpt, FusionOpt, IndexDirOpt, JsonOpt, ModeOpt, echo, emit_json,
                             hybrid_config, warn)
from odqa.retrieval.indexing import load_index


def hit_json(h) -> dict:
    p = h.passage
    return {"rank": h.rank, "score": round(h.score, 6), "id": p.id, "title": p.title, "doc_id": p.doc_id,
            "text": p.text, "source": h.source}


def retrieve(
    query: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    k: int = typer.Option(10, "-k", min=1, help="How many passages."),
    mode: str = ModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Retrieve the top-k passages for a question.

    Example: odqa retrieve "한라산의 높이는?" --index demo -k 5 --mode hybrid
    """
    idx = load_index(index, index_dir)
    for reason in idx.stale:
        warn(f"index '{index}' is stale: {reason}")
    hits = idx.retriever(mode, hybrid_config(alpha, fusion), encoder).search([query], k)[0]
    if json_out:
        emit_json({"query": query, "index": index, "mode": mode, "hits": [hit_json(h) for h in hits]})
        return
    if not hits:
        echo("no passage matches this question")
    for h in hits:
        snippet = h.passage.text.replace("\n", " ")
        echo(f"{h.rank:>3}. [{h.score:7.3f}] {h.passage.title} ({h.passage.id})")
        echo(f"     {snippet[:160]}{'…' if len(snippet) > 160 else ''}")
