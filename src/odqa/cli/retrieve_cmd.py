"""`odqa retrieve`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.cli.common import AlphaOpt, DeviceOpt, EncoderOpt, FusionOpt, IndexDirOpt, JsonOpt, ModeOpt, echo, emit_json, warn_stale
from odqa.cli.render import hit_json, snippet


def retrieve(
    query: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    k: int = typer.Option(10, "-k", min=1, help="How many passages."),
    mode: str = ModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Retrieve the top-k passages for a question.

    Example: odqa retrieve "한라산의 높이는?" --index demo -k 5 --mode hybrid
    """
    from odqa.api.pipeline import Pipeline
    from odqa.retrieval.base import check_queries

    check_queries([query])
    pipe = Pipeline.from_index(index, reader="none", mode=mode, k=k, index_dir=index_dir, alpha=alpha,
                               fusion=fusion, encoder=encoder, lazy_reader=True, device=device)
    warn_stale(pipe.index)
    hits = pipe.retrieve(query)
    if json_out:
        emit_json({"query": query, "index": index, "mode": pipe.mode, "hits": [hit_json(h) for h in hits]})
        return
    if not hits:
        echo("no passage matches this question")
    for h in hits:
        echo(f"{h.rank:>3}. [{h.score:7.3f}] {h.passage.title} ({h.passage.id})")
        echo(f"     {snippet(h.passage.text)}")
