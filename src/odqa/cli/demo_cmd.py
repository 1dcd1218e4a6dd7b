"""`odqa demo`: the main job on the bundled demo corpus, no download needed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from odqa.cli.common import IndexDirOpt, JsonOpt, echo, emit_json
from odqa.cli.retrieve_cmd import hit_json
from odqa.config import IndexConfig
from odqa.corpus import load_questions
from odqa.retrieval.evaluate import Judge, evaluate
from odqa.retrieval.indexing import build_index, load_index


def demo_file(name: str) -> Path:
    return Path(str(resources.files("odqa") / "data" / name))


def demo(
    shown: int = typer.Option(3, "--show", help="How many demo questions to print with their passages."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Index the bundled Korean demo corpus as 'demo', answer its questions and report recall.

    Example: odqa demo --show 5
    """
    res = build_index(demo_file("demo_corpus.jsonl"), "demo", IndexConfig(), index_dir, quiet=True)
    idx = load_index("demo", index_dir)
    qs = load_questions(demo_file("demo_questions.jsonl"))
    report = evaluate(lambda q, k: idx.sparse.search(q, k), qs, Judge(idx.canonical, {p.id for p in idx.passages}),
                      k=10)
    top = idx.sparse.search([q.question for q in qs[:shown]], 3)
    if json_out:
        emit_json({"index": "demo", "status": res.status, "metrics": report["metrics"],
                   "examples": [{"question": q.question, "answers": q.answers, "hits": [hit_json(h) for h in hits]}
                                for q, hits in zip(qs, top)]})
        return
    echo(f"index 'demo' {res.status}: {res.manifest['corpus']['passages']} passages at {res.folder}")
    for q, hits in zip(qs, top):
        echo(f"\nQ: {q.question}   (answer: {', '.join(q.answers)})")
        for h in hits:
            echo(f"  {h.rank}. [{h.score:.2f}] {h.passage.title}: {h.passage.text[:90]}…")
    m = report["metrics"]
    echo(f"\nretrieval on {m['questions']} demo questions: recall@1={m['recall@1']:.3f} "
         f"recall@5={m['recall@5']:.3f} mrr={m['mrr']:.3f}")
    echo("next: odqa retrieve \"질문\" --index demo   |   odqa index YOUR_CORPUS --name mine")
