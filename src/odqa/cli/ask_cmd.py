"""`odqa ask "질문"`: retrieve, read, answer (a rendering of `odqa.Pipeline.ask`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from odqa.api import PipelineConfig
from odqa.cli.common import IndexDirOpt, JsonOpt, echo, emit_json, warn_stale
from odqa.cli.pipeline_options import PIPELINE, pipeline_options
from odqa.cli.render import highlight


@pipeline_options()
def ask(
    question: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    top: int = typer.Option(3, "--top", "-n", min=1, help="Answers shown (best + alternatives)."),
    pipeline: PipelineConfig = PIPELINE,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-stage timings and the passages read."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Answer a question from an index: a span with its evidence passage.

    Example: odqa ask "한라산의 높이는?" --index demo --reader runs/reader/best

    Without --reader, odqa answers with the best evidence sentence (sentence level).
    """
    from odqa.api import Pipeline, check_queries

    check_queries([question])        # an empty question is refused before anything is loaded
    t0 = time.perf_counter()
    pipe = Pipeline.from_config(pipeline.with_overrides(index=index, n_best=max(top, pipeline.reader.n_best),
                                                        **({"index_dir": index_dir} if index_dir else {})))
    load_s = time.perf_counter() - t0
    warn_stale(pipe.index)
    res = pipe.ask(question)
    timings = {"load": round(load_s, 3), **{s: round(v, 3) for s, v in res.timings.items()}}
    readers = pipe.reader_settings["readers"]
    if json_out:
        emit_json({"question": question, "index": index, "mode": pipe.mode, "rerank": pipe.rerank or None,
                   "reader": "+".join(readers) if readers else None, "sentence_level": pipe.sentence_level,
                   "answers": [res.answer_json(s) for s in res.answers[:top]], "abstained": res.abstained,
                   "timings": timings})
        return
    if pipe.sentence_level:
        echo("(no trained reader: answering with the best evidence sentence; train one with `odqa train reader`)")
    if not res.answers:
        echo("no answer found")
        return
    best = res.answers[0]
    p = res.passage(best)
    if res.abstained:
        echo(f"확실하지 않음 (not sure: probability {best.probability:.3f} < {pipe.config.reader.min_probability:g}); "
             f"best guess:")
    echo(best.text)
    echo(f"  score {best.probability:.3f} · {p.title} ({p.id})")
    echo(f"  {highlight(p.text, best.start, best.end)}")
    if len(res.answers) > 1 and top > 1:
        echo("alternatives:")
        for s in res.answers[1:top]:
            echo(f"  {s.probability:.3f}  {s.text}  [{res.passage(s).title}]")
    if verbose:
        echo("timings: " + "  ".join(f"{s} {v * 1000:.0f} ms" for s, v in timings.items()))
        echo(f"passages read ({pipe.mode}):")
        for h in res.hits:
            echo(f"  {h.rank:>2}. [{h.score:.3f}] {h.passage.title} ({h.passage.id})")
