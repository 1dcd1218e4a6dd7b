"""`odqa train retriever` (reader and the others join this group)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import JsonOpt, QuietOpt, echo, emit_json

app = typer.Typer(no_args_is_help=True, help="Train models: the dense retriever, the reader.")


@app.command("retriever")
def retriever(
    train: List[Path] = typer.Option(..., "--train", help="SQuAD/KorQuAD JSON with contexts (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output folder (HF format; use with --encoder PATH)."),
    backbone: str = typer.Option("offline:multilingual-e5-small", "--backbone", help="Backbone spec to start from."),
    epochs: float = typer.Option(1.0, "--epochs"),
    max_steps: int = typer.Option(0, "--max-steps", help="Stop after this many optimizer steps (0 = epochs)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Questions per batch (each brings 1 gold + 1 hard negative)."),
    lr: float = typer.Option(2e-5, "--lr"),
    max_length: int = typer.Option(256, "--max-length", help="Passage tokens."),
    temperature: float = typer.Option(0.05, "--temperature"),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between evaluations on held-out questions."),
    time_budget: float = typer.Option(0.0, "--time-budget", help="Minutes; stop, evaluate and save when reached."),
    freeze_embeddings: bool = typer.Option(True, "--freeze-embeddings/--train-embeddings"),
    holdout: float = typer.Option(0.1, "--holdout", help="Share of training questions held out to pick the best checkpoint."),
    seed: int = typer.Option(42, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune the dense bi-encoder with in-batch and BM25 hard negatives.

    Example: odqa train retriever --train korquad1_train.json --out runs/retriever --time-budget 50
    """
    import time

    from odqa.corpus import load_questions
    from odqa.modeling.backbone import e5_prefix, load_backbone
    from odqa.retrieval.train_dense import RetrieverTask, RetrieverTrainConfig
    from odqa.training import TrainConfig, train as run_training

    questions = [q for f in train for q in load_questions(f)]
    rcfg = RetrieverTrainConfig(backbone=backbone, max_length=max_length, temperature=temperature,
                                freeze_embeddings=freeze_embeddings, holdout=holdout)
    tokenizer, model = load_backbone(backbone)
    task = RetrieverTask(tokenizer, questions, rcfg, batch_size, seed,
                         (e5_prefix("query", backbone), e5_prefix("passage", backbone)))
    tcfg = TrainConfig(lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, eval_every=eval_every,
                       metric="recall@1", greater_is_better=True, seed=seed, time_budget_minutes=time_budget,
                       freeze_prefixes=["embeddings.word_embeddings"] if freeze_embeddings else [])
    t0 = time.perf_counter()
    before = task.evaluate(model)
    res = run_training(model, task, tcfg, out, resume=resume, quiet=quiet or json_out)
    report = {"out": str(out / "best"), "train_questions": len(task.train), "heldout_questions": len(task.heldout),
              "heldout_before": before, "best_metric": res.best_metric, "best_step": res.best_step,
              "steps": res.steps, "stopped": res.stopped_reason, "minutes": round((time.perf_counter() - t0) / 60, 1)}
    if json_out:
        emit_json(report)
        return
    echo(f"held-out recall@1 {before.get('recall@1', 0):.3f} -> {res.best_metric:.3f} (step {res.best_step}, "
         f"{res.steps} steps, {report['minutes']} min, {res.stopped_reason})")
    echo(f"encoder saved to {out / 'best'}: odqa index CORPUS --name NAME --dense --encoder {out / 'best'}")
