"""`odqa pretrain`: masked-LM domain-adaptive pretraining of a backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.cli.common import DeviceOpt, JsonOpt, MixedPrecisionOpt, QuietOpt, echo, emit_json
from odqa.cli.train_options import (epochs_opt, freeze_embeddings_opt, lr_opt, max_steps_opt, resume_opt, seed_opt,
                                    time_budget_opt)


def pretrain(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus file or folder (JSONL, wiki JSON, SQuAD JSON, .txt)."),
    out: Path = typer.Option(..., "--out", help="Output backbone folder (HF format + odqa_pretrain.json)."),
    objective: str = typer.Option("span", "--objective", help="span (SpanBERT span masking) | token (BERT)."),
    align: str = typer.Option("none", "--align", help="Mask whole units: none | word | morpheme."),
    backbone: str = typer.Option("offline:multilingual-e5-small", "--backbone", help="Backbone spec to start from."),
    analyzer: str = typer.Option("mecab", "--analyzer", help="Morpheme analyzer for --align morpheme: mecab | kiwi."),
    max_length: int = typer.Option(256, "--max-length", help="Tokens per packed chunk (specials included)."),
    batch_size: int = typer.Option(16, "--batch-size", help="Chunks per batch."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Batches per optimizer step."),
    lr: float = lr_opt(5e-5),
    epochs: float = epochs_opt(),
    max_steps: int = max_steps_opt(),
    time_budget: float = time_budget_opt(then="evaluate and publish"),
    eval_every: int = typer.Option(0, "--eval-every", help="Steps between held-out evaluations (0 = each epoch)."),
    save_every: int = typer.Option(0, "--save-every", help="Steps between resumable checkpoints (0 = at evaluations)."),
    mask_ratio: float = typer.Option(0.15, "--mask-ratio", help="Share of maskable tokens to predict."),
    span_p: float = typer.Option(0.2, "--span-p", help="Geometric p of span lengths (0.2: mean 3.8 units; 0.3: 3.0)."),
    max_span: int = typer.Option(10, "--max-span", help="Longest span in units."),
    holdout: float = typer.Option(0.02, "--holdout", help="Share of chunks held out for the evaluation loss."),
    freeze_embeddings: bool = freeze_embeddings_opt(help="Keep word embeddings (and the tied output projection) "
                                                           "fixed."),
    head_warmup: int = typer.Option(0, "--head-warmup-steps", help="First optimizer steps train only the MLM head "
                                    "(for a backbone without one, such as e5); the encoder learns after them."),
    corpus_format: str = typer.Option("auto", "--format", help="Corpus format: auto | wiki | jsonl | squad | txt."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Checkpoints and history (default: OUT.run)."),
    resume: bool = resume_opt("Continue from RUN_DIR/last."),
    seed: int = seed_opt(),
    device: str = DeviceOpt,
    mixed_precision: str = MixedPrecisionOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Domain-adaptive masked-LM pretraining; the output folder is a backbone that
    `odqa train reader|retriever` and `odqa re train` take as --backbone.

    Example: odqa pretrain --corpus bench/corpus.jsonl --out runs/e5-span --objective span --align morpheme --time-budget 60
    """
    import logging

    from odqa.api.training import PretrainRequest, pretrain as run_pretrain

    logging.getLogger("odqa.pretraining").setLevel(logging.ERROR)   # the head report is printed below
    cfg = PretrainRequest(
        corpus=corpus, out=out, run_dir=run_dir, resume=resume, backbone=backbone, objective=objective, align=align,
        analyzer=analyzer, max_length=max_length, mask_ratio=mask_ratio, span_p=span_p, max_span=max_span,
        holdout=holdout, freeze_embeddings=freeze_embeddings, corpus_format=corpus_format,
        head_warmup_steps=head_warmup,
        train=dict(lr=lr, batch_size=batch_size, epochs=epochs, max_steps=max_steps, grad_accum=grad_accum,
                          eval_every=eval_every, save_every=save_every, time_budget_minutes=time_budget, seed=seed,
                   device=device, mixed_precision=mixed_precision))
    report = run_pretrain(cfg, quiet=quiet or json_out).to_json()
    if json_out:
        emit_json(report)
        return
    head = report["mlm_head"]
    if head["head_initialised"]:
        typer.echo(f"note: {backbone} had no MLM head: initialised fresh ({len(head['missing_head_weights'])} weights), "
                   f"output projection {'tied to the word embeddings' if head['output_tied_to_embeddings'] else 'untied'}",
                   err=True)
    before = report["heldout_loss_before"]
    echo(f"held-out MLM loss {before:.4f} -> {report['heldout_loss']:.4f}" if before is not None
         else f"held-out MLM loss {report['heldout_loss']:.4f}")
    echo(f"{report['steps']} steps ({report['stopped']}, best at step {report['best_step']}), "
         f"{report['chunks_train']} train chunks, {report['seconds'] / 60:.1f} min")
    echo(f"backbone saved to {out}: odqa train reader --backbone {out}")
