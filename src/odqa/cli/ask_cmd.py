"""`odqa ask "질문"`: retrieve, read, answer (a rendering of `odqa.Pipeline.ask`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from odqa.api.readers import DEFAULT_K, DEFAULT_RETRIEVAL_WEIGHT, PARTICLES_FILE  # noqa: F401  (PARTICLES_FILE: kept importable for older callers)
from odqa.cli.common import AlphaOpt, DeviceOpt, EncoderOpt, FusionOpt, IndexDirOpt, JsonOpt, echo, emit_json, warn_stale
from odqa.cli.render import highlight

AskModeOpt = typer.Option("auto", "--mode", "-m", help="sparse | dense | hybrid | auto (hybrid if the index has vectors).")
ReaderOpt = typer.Option(None, "--reader", "-r", help="Reader checkpoint folder (odqa train reader OUT/best); "
                                                      "'none' for sentence-level answers.")
RetrievalWeightOpt = typer.Option(DEFAULT_RETRIEVAL_WEIGHT, "--retrieval-weight", help="Weight of the passage's retrieval "
                                  "score (min-max over the passages read) in span scores; the default was chosen on train questions.")
KReadOpt = typer.Option(DEFAULT_K, "-k", min=1, help="Passages read per question (the default was chosen on train questions).")
ReaderRuntimeOpt = typer.Option("torch", "--reader-runtime", help="Where the reader's span model runs: torch | onnx | "
                                 "onnx-int8 (ONNX Runtime on the CPU, exported once and cached; int8 is the fastest).")
RerankerOpt = typer.Option(None, "--reranker", help="Cross-encoder folder (odqa train reranker OUT/best): reranks "
                                                    "the retrieved passages before reading.")
RerankOpt = typer.Option(0, "--rerank", min=0, help="Passages retrieved for the reranker, which keeps the best -k of them "
                                                   "(needs --reranker; default with one: 20).")
ParticlesOpt = typer.Option(None, "--particles", help="Strip josa from answers with learned rules: a rules file, or "
                                                      "'auto' for READER/particles.json (odqa train particles), or 'none' (not even a "
                                                      "shipped reader's own rules, which apply by default).")


def ask(
    question: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    reader: Optional[List[str]] = ReaderOpt,
    k: int = KReadOpt,
    top: int = typer.Option(3, "--top", "-n", min=1, help="Answers shown (best + alternatives)."),
    mode: str = AskModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    retrieval_weight: float = RetrievalWeightOpt,
    particles: Optional[Path] = ParticlesOpt,
    reader_runtime: str = ReaderRuntimeOpt,
    reranker: Optional[Path] = RerankerOpt,
    rerank: int = RerankOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-stage timings and the passages read."),
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Answer a question from an index: a span with its evidence passage.

    Example: odqa ask "한라산의 높이는?" --index demo --reader runs/reader/best

    Without --reader, odqa answers with the best evidence sentence (sentence level).
    """
    from odqa.api.pipeline import Pipeline
    from odqa.retrieval.base import check_queries

    check_queries([question])        # an empty question is refused before anything is loaded
    t0 = time.perf_counter()
    pipe = Pipeline.from_index(index, reader=list(reader or []), mode=mode, k=k, index_dir=index_dir, alpha=alpha,
                               fusion=fusion, encoder=encoder, retrieval_weight=retrieval_weight,
                               particles=particles, n_best=max(top, 20), device=device, reader_runtime=reader_runtime,
                               reranker=reranker, rerank=rerank)
    load_s = time.perf_counter() - t0
    warn_stale(pipe.index)
    res = pipe.ask(question)
    timings = {"load": round(load_s, 3), **{s: round(v, 3) for s, v in res.timings.items()}}
    readers = pipe.reader_settings["readers"]
    if json_out:
        emit_json({"question": question, "index": index, "mode": pipe.mode, "rerank": pipe.rerank or None,
                   "reader": "+".join(readers) if readers else None, "sentence_level": pipe.sentence_level,
                   "answers": [res.answer_json(s) for s in res.answers[:top]], "timings": timings})
        return
    if pipe.sentence_level:
        echo("(no trained reader: answering with the best evidence sentence; train one with `odqa train reader`)")
    if not res.answers:
        echo("no answer found")
        return
    best = res.answers[0]
    p = res.passage(best)
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
