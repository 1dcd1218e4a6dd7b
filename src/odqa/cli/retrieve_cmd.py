"""`odqa retrieve`: the passages a retriever finds (a rendering of `odqa.Retriever.retrieve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.api import PipelineConfig
from odqa.cli.common import IndexDirOpt, JsonOpt, ModeOpt, echo, emit_json, warn_stale
from odqa.cli.pipeline_options import PIPELINE, RETRIEVER, pipeline_options
from odqa.cli.render import hit_json, snippet

# retrieve shows passages: its -k counts them, and it searches sparse unless told
SHOWN = {"k": (int, typer.Option(10, "-k", min=1, help="How many passages.")), "mode": (str, ModeOpt)}


@pipeline_options(RETRIEVER, config_file=False, replace=SHOWN)
def retrieve(
    query: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    pipeline: PipelineConfig = PIPELINE,
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Retrieve the top-k passages for a question.

    Example: odqa retrieve "한라산의 높이는?" --index demo -k 5 --mode hybrid
    """
    from odqa.api import Retriever, check_queries

    check_queries([query])
    retriever = Retriever.from_index(index, pipeline.retriever, index_dir, pipeline.device)
    warn_stale(retriever.index)
    hits = retriever.retrieve(query)
    if json_out:
        emit_json({"query": query, "index": index, "mode": retriever.mode, "hits": [hit_json(h) for h in hits]})
        return
    if not hits:
        echo("no passage matches this question")
    for h in hits:
        echo(f"{h.rank:>3}. [{h.score:7.3f}] {h.passage.title} ({h.passage.id})")
        echo(f"     {snippet(h.passage.text)}")
