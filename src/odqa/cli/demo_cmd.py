"""`odqa demo`: the main job on the bundled demo corpus, no download needed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from odqa.cli.ask_cmd import answer_json, highlight, open_reader
from odqa.cli.common import IndexDirOpt, JsonOpt, echo, emit_json
from odqa.cli.retrieve_cmd import hit_json
from odqa.config import IndexConfig
from odqa.corpus import load_questions
from odqa.retrieval.evaluate import Judge, evaluate
from odqa.pipeline import Pipeline
from odqa.retrieval.indexing import build_index, load_index


def demo_file(name: str) -> Path:
    return Path(str(resources.files("odqa") / "data" / name))


def demo(
    shown: int = typer.Option(3, "--show", help="How many demo questions to answer and print."),
    reader: Optional[Path] = typer.Option(None, "--reader", "-r", help="Reader checkpoint (default: sentence-level answers)."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Index the bundled Korean demo corpus as 'demo', answer some of its questions and report recall.

    Example: odqa demo --show 5
    """
    res = build_index(demo_file("demo_corpus.jsonl"), "demo", IndexConfig(), index_dir, quiet=True)
    idx = load_index("demo", index_dir)
    qs = load_questions(demo_file("demo_questions.jsonl"))
    report = evaluate(lambda q, k: idx.sparse.search(q, k), qs, Judge(idx.canonical, idx.passage_ids()),
                      k=10)
    rd = open_reader(reader, idx, 3)
    results = Pipeline(idx.sparse, rd, 3).ask_batch([q.question for q in qs[:shown]])
    sentence_level = getattr(rd, "sentence_level", False)
    if json_out:
        emit_json({"index": "demo", "status": res.status, "metrics": report["metrics"], "sentence_level": sentence_level,
                   "examples": [{"question": q.question, "gold": q.answers,
                                 "answers": [answer_json(s, {h.passage.id: h.passage for h in r.hits}) for s in r.answers],
                                 "hits": [hit_json(h) for h in r.hits]} for q, r in zip(qs, results)]})
        return
    echo(f"index 'demo' {res.status}: {res.manifest['corpus']['passages']} passages at {res.folder}")
    if sentence_level:
        echo("(no trained reader given: answers are the best evidence sentences)")
    for q, r in zip(qs, results):
        echo(f"\nQ: {q.question}   (gold: {', '.join(q.answers)})")
        if not r.answers:
            echo("  no answer found")
            continue
        best = r.answers[0]
        p = next(h.passage for h in r.hits if h.passage.id == best.passage_id)
        echo(f"  A: {best.text}   [{p.title}, {best.probability:.2f}]")
        echo(f"     {highlight(p.text, best.start, best.end, 40)}")
    m = report["metrics"]
    echo(f"\nretrieval on {m['questions']} demo questions: recall@1={m['recall@1']:.3f} "
         f"recall@5={m['recall@5']:.3f} mrr={m['mrr']:.3f}")
    echo("next: odqa ask \"질문\" --index demo   |   odqa index YOUR_CORPUS --name mine   |   odqa train reader --help")
