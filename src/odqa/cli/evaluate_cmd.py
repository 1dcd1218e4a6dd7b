"""`odqa evaluate retrieval`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import IndexDirOpt, JsonOpt, QuietOpt, echo, emit_json, warn
from odqa.config import BM25Config
from odqa.corpus import load_questions
from odqa.progress import bar
from odqa.retrieval.evaluate import Judge, evaluate, parse_sweep, sweep_bm25
from odqa.retrieval.indexing import load_index

app = typer.Typer(no_args_is_help=True, help="Measure retrieval (and, with a reader, answer) quality.")


def _print_metrics(m: dict) -> None:
    keys = [k for k in m if k.startswith("recall@")] + ["mrr"]
    echo("  ".join(f"{k}={m[k]:.4f}" for k in keys))


@app.command("retrieval")
def retrieval(
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    questions: Path = typer.Option(..., "--questions", help="SQuAD/KorQuAD JSON or JSONL (question, answers, gold_ids)."),
    k: int = typer.Option(100, "-k", min=1, help="Depth searched (recall@k reported up to this)."),
    dump: Optional[Path] = typer.Option(None, "--dump", help="Write one JSON line per question (rank, top ids)."),
    sweep: Optional[List[str]] = typer.Option(None, "--sweep", help="Grid to try, e.g. k1=0.9,1.2,1.5,b=0.3,0.75"),
    metric: str = typer.Option("recall@1", "--metric", help="What --sweep maximises (ties broken by MRR)."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Recall@1/5/10/20/50/100 and MRR of an index on a question set.

    Example: odqa evaluate retrieval --index bench --questions dev.jsonl --sweep k1=0.9,1.2,b=0.5,0.75
    """
    idx = load_index(index, index_dir)
    for reason in idx.stale:
        warn(f"index '{index}' is stale: {reason}")
    qs = load_questions(questions)
    judge = Judge(idx.canonical, {p.id for p in idx.passages})
    if sweep:
        s = idx.manifest["sparse"]
        base = BM25Config(method=s["method"], k1=s["k1"], b=s["b"], delta=s["delta"])
        grid = parse_sweep(sweep)
        n = 1
        for v in grid.values():
            n *= len(v)
        with bar(n, "sweep", "setting", quiet or json_out) as pb:
            res = sweep_bm25(idx.passages, idx.analyzer(), base, s["include_title"], qs, judge, grid, metric,
                             pb.update)
        if json_out:
            emit_json({"index": index, "questions": str(questions), **res})
            return
        for row in res["rows"]:
            params = " ".join(f"{k}={v:g}" for k, v in row["params"].items())
            echo(f"{params:<24} " + "  ".join(f"{k}={row[k]:.4f}" for k in ("recall@1", "recall@5", "recall@20", "mrr")))
        best = " ".join(f"--set bm25.{k}={v:g}" for k, v in res["best"]["params"].items())
        echo(f"best by {metric}: {best}  (rebuild: odqa index CORPUS --name {index} {best} --force)")
        return
    with bar(len(qs), "evaluating", "question", quiet or json_out) as pb:
        res = evaluate(lambda q, kk: idx.sparse.search(q, kk), qs, judge, k=k, progress=pb.update)
    if dump:
        with open(dump, "w", encoding="utf-8") as fh:
            for row in res["per_question"]:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    m = res["metrics"]
    if json_out:
        emit_json({"index": index, "questions": str(questions), "mode": "sparse", "metrics": m})
        return
    echo(f"{m['questions']} questions on index '{index}' (judged by {m['judged_by']}), "
         f"{m['queries_per_second']} queries/s")
    _print_metrics(m)
