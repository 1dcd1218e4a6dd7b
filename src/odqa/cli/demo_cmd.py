"""`odqa demo`: the main job on the bundled demo corpus, no download needed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.cli.common import DeviceOpt, IndexDirOpt, JsonOpt, echo, emit_json
from odqa.cli.render import highlight, hit_json


def demo(
    shown: int = typer.Option(3, "--show", help="How many demo questions to answer and print."),
    reader: Optional[str] = typer.Option(None, "--reader", "-r", help="Reader checkpoint (default: sentence-level answers)."),
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Index the bundled Korean demo corpus as 'demo', answer some of its questions and report recall.

    Example: odqa demo --show 5
    """
    from odqa.api import run_demo
    d = run_demo(reader, shown, index_dir, device)
    if json_out:
        emit_json({"index": "demo", "status": d.build.status, "metrics": d.retrieval.metrics,
                   "sentence_level": d.pipeline.sentence_level, "reader": d.pipeline.reader_settings["readers"],
                   "answers": {k: d.answers.metrics[k] for k in ("questions", "em", "f1", "scored", "no_answer")},
                   "examples": [{"question": q.question, "gold": q.answers,
                                 "answers": [r.answer_json(s) for s in r.answers], "hits": [hit_json(h) for h in r.hits]}
                                for q, r in zip(d.questions, d.results)]})
        return
    echo(f"index 'demo' {d.build.status}: {d.build.manifest['corpus']['passages']} passages at {d.build.folder}")
    if d.pipeline.sentence_level:
        echo("(no trained reader given: answers are the best evidence sentences)")
    for q, r in zip(d.questions, d.results):
        echo(f"\nQ: {q.question}   (gold: {', '.join(q.answers)})")
        if not r.answers:
            echo("  no answer found")
            continue
        best = r.answers[0]
        p = r.passage(best)
        echo(f"  A: {best.text}   [{p.title}, {best.probability:.2f}]")
        echo(f"     {highlight(p.text, best.start, best.end, 40)}")
    m = d.retrieval.metrics
    echo(f"\nretrieval on {m['questions']} demo questions: recall@1={m['recall@1']:.3f} "
         f"recall@5={m['recall@5']:.3f} mrr={m['mrr']:.3f}")
    a = d.answers.metrics
    echo(f"answers on all {a['questions']} demo questions: EM {a['em']:.2f}  F1 {a['f1']:.2f}"
         + ("  (sentence-level: whole sentences rarely match a short answer)" if d.pipeline.sentence_level else ""))
    echo("next: odqa ask \"질문\" --index demo   |   odqa index YOUR_CORPUS --name mine   |   odqa train reader --help")
