"""`odqa evaluate` (answers, end to end) and `odqa evaluate retrieval`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.ask_cmd import ParticlesOpt
from odqa.cli.common import (AlphaOpt, EncoderOpt, FusionOpt, IndexDirOpt, JsonOpt, ModeOpt, QuietOpt, echo,
                             emit_json, hybrid_config, warn)
from odqa.config import BM25Config
from odqa.corpus import load_questions, write_jsonl
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.retrieval.evaluate import Judge, evaluate, parse_sweep, sweep_bm25, sweep_fusion
from odqa.retrieval.indexing import load_index

app = typer.Typer(invoke_without_command=True)


@app.callback()
def answers(
    ctx: typer.Context,
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Index name (open domain)."),
    reader: Optional[List[Path]] = typer.Option(None, "--reader", "-r", help="Reader checkpoint; repeat to ensemble by soft voting."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Questions with answers (SQuAD/KorQuAD JSON, JSONL)."),
    closed: bool = typer.Option(False, "--closed", help="Read only each question's gold passage (needs contexts)."),
    k: int = typer.Option(10, "-k", min=1, help="Passages read per question (open domain)."),
    mode: str = typer.Option("auto", "--mode", "-m", help="sparse | dense | hybrid | auto."),
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    retrieval_weight: float = typer.Option(0.0, "--retrieval-weight", help="Weight of the retrieval score in span scores."),
    particles: Optional[Path] = ParticlesOpt,
    limit: int = typer.Option(0, "--limit", help="Evaluate only the first N questions (0 = all)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for predictions.json, nbest.json, metrics.json."),
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """EM/F1 of answers (KorQuAD rules), retrieval recall alongside, per-stage timing.

    Example: odqa evaluate --index bench --reader runs/reader/best --questions korquad1_dev.json --out eval/

    Closed domain (gold passage only): odqa evaluate --closed --reader runs/reader/best --questions dev.json
    """
    if ctx.invoked_subcommand is not None:
        return
    from odqa.cli.qa_eval_cmd import run_answers
    if questions is None or (not closed and index is None):
        raise OdqaError("give --questions and --index (or --closed); see `odqa evaluate --help`")
    run_answers(index=index, readers=list(reader or []), questions=questions, closed=closed, k=k, mode=mode,
                hybrid=hybrid_config(alpha, fusion), encoder=encoder, retrieval_weight=retrieval_weight,
                particles=particles, limit=limit, out=out, index_dir=index_dir, json_out=json_out, quiet=quiet)


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
    mode: str = ModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Recall@1/5/10/20/50/100 and MRR of an index on a question set.

    Example: odqa evaluate retrieval --index bench --questions dev.jsonl --sweep k1=0.9,1.2,b=0.5,0.75

    With --mode hybrid, --sweep tries fusion weights instead: --sweep alpha=0.2,0.4,0.6
    """
    idx = load_index(index, index_dir)
    for reason in idx.stale:
        warn(f"index '{index}' is stale: {reason}")
    qs = load_questions(questions)
    judge = Judge(idx.canonical, idx.passage_ids())
    retriever = idx.retriever(mode, hybrid_config(alpha, fusion), encoder)
    if sweep:
        grid = parse_sweep(sweep)
        n = 1
        for v in grid.values():
            n *= len(v)
        with bar(n, "sweep", "setting", quiet or json_out) as pb:
            if mode == "hybrid":
                res = sweep_fusion(retriever, qs, judge, grid, metric, k, pb.update)
            elif mode == "sparse":
                s = idx.manifest["sparse"]
                base = BM25Config(method=s["method"], k1=s["k1"], b=s["b"], delta=s["delta"])
                res = sweep_bm25(idx.passages, idx.analyzer(), base, s["include_title"], qs, judge, grid, metric,
                                 pb.update)
            else:
                raise OdqaError("--sweep works with --mode sparse (k1, b, delta) or --mode hybrid (alpha, rrf_k)")
        if json_out:
            emit_json({"index": index, "questions": str(questions), "mode": mode, **res})
            return
        for row in res["rows"]:
            params = " ".join(f"{k}={v:g}" for k, v in row["params"].items())
            echo(f"{params:<24} " + "  ".join(f"{k}={row[k]:.4f}" for k in ("recall@1", "recall@5", "recall@20", "mrr")))
        params = res["best"]["params"]
        if mode == "hybrid":
            use = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in params.items())
            echo(f"best by {metric}: {use}  (pass it to odqa retrieve/evaluate/ask)")
        else:
            use = " ".join(f"--set bm25.{k}={v:g}" for k, v in params.items())
            echo(f"best by {metric}: {use}  (rebuild: odqa index CORPUS --name {index} {use} --force)")
        return
    with bar(len(qs), "evaluating", "question", quiet or json_out) as pb:
        res = evaluate(retriever.search, qs, judge, k=k, progress=pb.update)
    if dump:
        write_jsonl(dump, res["per_question"])
    m = res["metrics"]
    if json_out:
        emit_json({"index": index, "questions": str(questions), "mode": mode, "metrics": m})
        return
    echo(f"{m['questions']} questions on index '{index}' (judged by {m['judged_by']}), "
         f"{m['queries_per_second']} queries/s")
    _print_metrics(m)
