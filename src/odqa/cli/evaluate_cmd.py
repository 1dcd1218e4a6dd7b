"""`odqa evaluate` (answers, end to end) and `odqa evaluate retrieval`: renderings of the API's reports."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.api import OdqaError, PipelineConfig
from odqa.cli.common import (AlphaOpt, DeviceOpt, EncoderOpt, EncodingOpt, FusionOpt, IndexDirOpt, JsonOpt, ModeOpt,
                             QuietOpt, echo, emit_json, warn, warn_stale)
from odqa.cli.pipeline_options import PIPELINE, open_pipeline, pipeline_options

app = typer.Typer(invoke_without_command=True)


@app.callback()
@pipeline_options()
def answers(
    ctx: typer.Context,
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Index name (open domain)."),
    questions: Optional[Path] = typer.Option(None, "--questions", help="Questions with answers (SQuAD/KorQuAD JSON, JSONL)."),
    encoding: Optional[str] = EncodingOpt,
    closed: bool = typer.Option(False, "--closed", help="Read only each question's gold passage (needs contexts)."),
    pipeline: PipelineConfig = PIPELINE,
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
    from odqa.api import QuestionFile, evaluate_answers
    if questions is None or (not closed and index is None):
        raise OdqaError("give --questions and --index (or --closed); see `odqa evaluate --help`")
    questions = QuestionFile(questions, encoding)      # a bad file fails before any model loads
    pipe = open_pipeline(pipeline, None if closed else index, index_dir)
    k = pipeline.retriever.k
    if pipe.sentence_level:
        warn("no --reader: answers are whole sentences, so EM/F1 will be low (train one with `odqa train reader`)")
    rep = evaluate_answers(pipe, questions, closed=closed, k=k, limit=limit, out=out, quiet=quiet or json_out)
    m = rep.metrics
    if json_out:
        emit_json(m)
        return
    where = "closed domain (gold passage)" if closed else f"open domain, index '{index}', {pipe.mode} top-{k}"
    if pipe.reranker is not None:
        where += f" of {pipe.rerank} reranked"
    echo(f"{m['scored']} questions, {where}: EM {m['em']:.2f}  F1 {m['f1']:.2f}  (no answer: {m['no_answer']})")
    if "retrieval" in m:
        echo("retrieval " + "  ".join(f"{key}={v:.4f}" for key, v in m["retrieval"].items()))
    if "retrieval_before_rerank" in m:
        echo("before reranking " + "  ".join(f"{key}={v:.4f}" for key, v in m["retrieval_before_rerank"].items()))
    echo("lost at: " + "  ".join(f"{s} {n}" for s, n in m["stages"].items()))
    echo("wrong spans: " + "  ".join(f"{s} {n}" for s, n in m["span_errors"].items()))
    c = m["calibration"]
    echo(f"calibration: ECE {c['ece']:.3f}  AUROC {c['auroc']}  mean probability {c['mean_probability']:.3f}  EM at "
         "coverage " + "  ".join(f"{cov}% {em:.2f}" for cov, em in c["em_at_coverage"].items()))
    if "abstention" in m:
        a = m["abstention"]
        echo(f"at min probability {a['min_probability']:g}: {a['answered']} answered ({100 * a['coverage']:.1f} %), "
             f"EM {a['em_answered']:.2f}")
    echo("seconds per question: " + "  ".join(f"{s} {v:.3f}" for s, v in m["seconds_per_question"].items()))
    if out:
        echo(f"wrote {out}/predictions.json, nbest.json, stages.json, metrics.json")


def _print_metrics(m: dict) -> None:
    keys = [k for k in m if k.startswith("recall@")] + ["mrr"]
    echo("  ".join(f"{k}={m[k]:.4f}" for k in keys))
    t = m["trec"]
    echo(f"over the relevant sets ({t['questions']} questions): " + "  ".join(
        f"{k}={t[k]:.4f}" for k in ("ndcg@10", "mrr@10", "recall@100")))


@app.command("retrieval")
def retrieval(
    index: str = typer.Option(..., "--index", "-i", help="Index name."),
    questions: Path = typer.Option(..., "--questions", help="SQuAD/KorQuAD JSON, JSONL, Parquet, CSV, TSV or a datasets folder "
                               "(question, answers, gold_ids; or AutoRAG's qid, query, retrieval_gt, generation_gt)."),
    encoding: Optional[str] = EncodingOpt,
    k: int = typer.Option(100, "-k", min=1, help="Depth searched (recall@k reported up to this)."),
    dump: Optional[Path] = typer.Option(None, "--dump", help="Write one JSON line per question (rank, top ids)."),
    run_file: Optional[Path] = typer.Option(None, "--run-file", help="Write the TREC run file (QID Q0 DOCID RANK "
                                            "SCORE TAG) of what was retrieved."),
    qrels_file: Optional[Path] = typer.Option(None, "--qrels-file", help="Write the TREC qrels file (QID 0 DOCID 1) "
                                              "of each question's relevant passages."),
    sweep: Optional[List[str]] = typer.Option(None, "--sweep", help="Grid to try, e.g. k1=0.9,1.2,1.5,b=0.3,0.75"),
    metric: str = typer.Option("recall@1", "--metric", help="What --sweep maximises (ties broken by MRR)."),
    mode: str = ModeOpt,
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    encoder: Optional[str] = EncoderOpt,
    filters: Optional[List[str]] = typer.Option(None, "--filter", help="Search only passages whose metadata match "
                                                "(field=value, 'field in [a,b]', year>=2000); repeat for several."),
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Recall@1/5/10/20/50/100 and MRR of an index on a question set; nDCG@10, MRR@10 and recall@100 as
    trec_eval computes them.

    Example: odqa evaluate retrieval --index bench --questions dev.jsonl --sweep k1=0.9,1.2,b=0.5,0.75

    TREC files for other evaluators: --run-file run.trec --qrels-file qrels.trec

    With --mode hybrid, --sweep tries fusion weights instead: --sweep alpha=0.2,0.4,0.6
    """
    from odqa.api import QuestionFile, evaluate_retrieval, load_index, sweep_retrieval
    questions = QuestionFile(questions, encoding)
    idx = load_index(index, index_dir)
    warn_stale(idx)
    if sweep:
        res = sweep_retrieval(idx, questions, sweep, mode, metric, k, alpha, fusion, encoder,
                              quiet=quiet or json_out, device=device)
        if json_out:
            emit_json(res.to_json())
            return
        for row in res.rows:
            params = " ".join(f"{k}={v:g}" for k, v in row["params"].items())
            echo(f"{params:<24} " + "  ".join(f"{k}={row[k]:.4f}" for k in ("recall@1", "recall@5", "recall@20", "mrr")))
        params = res.best["params"]
        if res.mode == "hybrid":
            use = " ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in params.items())
            echo(f"best by {metric}: {use}  (pass it to odqa retrieve/evaluate/ask)")
        else:
            use = " ".join(f"--set bm25.{k}={v:g}" for k, v in params.items())
            echo(f"best by {metric}: {use}  (rebuild: odqa index CORPUS --name {index} {use} --force)")
        return
    res = evaluate_retrieval(idx, questions, mode, k, alpha, fusion, encoder, dump=dump, quiet=quiet or json_out,
                             device=device, filters=filters, run_file=run_file, qrels_file=qrels_file)
    m = res.metrics
    if json_out:
        emit_json(res.to_json())
        return
    echo(f"{m['questions']} questions on index '{index}' (judged by {m['judged_by']}), "
         f"{m['queries_per_second']} queries/s")
    _print_metrics(m)
    for what, path in (("run", run_file), ("qrels", qrels_file)):
        if path:
            echo(f"wrote the TREC {what} file {path}")
