"""`odqa ask "질문"`: retrieve, read, answer."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.errors import OdqaError
from odqa.cli.common import AlphaOpt, EncoderOpt, FusionOpt, IndexDirOpt, JsonOpt, echo, emit_json, hybrid_config, warn

PARTICLES_FILE = "particles.json"
AskModeOpt = typer.Option("auto", "--mode", "-m", help="sparse | dense | hybrid | auto (hybrid if the index has vectors).")
ReaderOpt = typer.Option(None, "--reader", "-r", help="Reader checkpoint folder (odqa train reader OUT/best).")
RetrievalWeightOpt = typer.Option(0.0, "--retrieval-weight", help="Weight of the passage's retrieval score in span scores.")
ParticlesOpt = typer.Option(None, "--particles", help="Strip josa from answers with learned rules: a rules file, or "
                                                      "'auto' for READER/particles.json (odqa train particles).")


def resolve_mode(mode: str, idx) -> str:
    if mode == "auto":
        return "hybrid" if idx.manifest.get("dense") else "sparse"
    return mode


def open_reader(reader: Optional[Path], idx, n_best: int, retrieval_weight: float = 0.0,
                particles: Optional[Path] = None):
    """The trained reader at `reader`, or the sentence-level fallback on the index's (or the offline) encoder."""
    extra = []
    if particles is not None and str(particles) == "auto":
        if reader is None:
            raise OdqaError("--particles auto needs --reader (the rules live in the reader folder)")
        particles = Path(reader) / PARTICLES_FILE
        if not particles.exists():
            raise OdqaError(f"{particles}: no particle rules: learn them with "
                            f"`odqa train particles --reader {reader} --train TRAIN.json`")
    if particles is not None:
        from odqa.text.particles import ParticleRules
        from odqa.reader.postprocess import particle_step
        extra.append(particle_step(ParticleRules.load(particles)))
    if reader is not None:
        from odqa.reader.reader import Reader
        return Reader(reader, n_best=n_best, retrieval_weight=retrieval_weight, extra_steps=extra)
    from odqa.reader.sentence import SentenceReader
    from odqa.retrieval.dense import DenseEncoder
    d = idx.manifest.get("dense")
    encoder = idx.query_encoder() if d else DenseEncoder("offline:multilingual-e5-small", 256)
    return SentenceReader(encoder, n_best=n_best)


def highlight(text: str, start: int, end: int, width: int = 80) -> str:
    """The passage around [start, end) with the answer between « »."""
    a, b = max(0, start - width), min(len(text), end + width)
    return (("…" if a else "") + text[a:start] + "«" + text[start:end] + "»" + text[end:b]
            + ("…" if b < len(text) else "")).replace("\n", " ")


def answer_json(span, passages: dict) -> dict:
    p = passages.get(span.passage_id)
    return {**span.to_json(), "title": p.title if p else ""}


def ask(
    question: str = typer.Argument(..., help="The question, in Korean."),
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    reader: Optional[Path] = ReaderOpt,
    k: int = typer.Option(10, "-k", min=1, help="Passages read."),
    top: int = typer.Option(3, "--top", "-n", min=1, help="Answers shown (best + alternatives)."),
    mode: str = AskModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    retrieval_weight: float = RetrievalWeightOpt,
    particles: Optional[Path] = ParticlesOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Per-stage timings and the passages read."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Answer a question from an index: a span with its evidence passage.

    Example: odqa ask "한라산의 높이는?" --index demo --reader runs/reader/best

    Without --reader, odqa answers with the best evidence sentence (sentence level).
    """
    import time

    from odqa.pipeline import Pipeline
    from odqa.retrieval.indexing import load_index

    t0 = time.perf_counter()
    idx = load_index(index, index_dir)
    for reason in idx.stale:
        warn(f"index '{index}' is stale: {reason}")
    mode = resolve_mode(mode, idx)
    rd = open_reader(reader, idx, max(top, 20), retrieval_weight, particles)
    retriever = idx.retriever(mode, hybrid_config(alpha, fusion), encoder)
    load_s = time.perf_counter() - t0
    res = Pipeline(retriever, rd, k).ask(question)
    sentence_level = getattr(rd, "sentence_level", False)
    passages = {h.passage.id: h.passage for h in res.hits}
    timings = {"load": round(load_s, 3), **{s: round(v, 3) for s, v in res.timings.items()}}
    if json_out:
        emit_json({"question": question, "index": index, "mode": mode, "reader": str(reader) if reader else None,
                   "sentence_level": sentence_level,
                   "answers": [answer_json(s, passages) for s in res.answers[:top]],
                   "timings": timings})
        return
    if sentence_level:
        echo("(no trained reader: answering with the best evidence sentence; train one with `odqa train reader`)")
    if not res.answers:
        echo("no answer found")
        return
    best = res.answers[0]
    p = passages[best.passage_id]
    echo(best.text)
    echo(f"  score {best.probability:.3f} · {p.title} ({p.id})")
    echo(f"  {highlight(p.text, best.start, best.end)}")
    if len(res.answers) > 1 and top > 1:
        echo("alternatives:")
        for s in res.answers[1:top]:
            echo(f"  {s.probability:.3f}  {s.text}  [{passages[s.passage_id].title}]")
    if verbose:
        echo("timings: " + "  ".join(f"{s} {v * 1000:.0f} ms" for s, v in timings.items()))
        echo(f"passages read ({mode}):")
        for h in res.hits:
            echo(f"  {h.rank:>2}. [{h.score:.3f}] {h.passage.title} ({h.passage.id})")
