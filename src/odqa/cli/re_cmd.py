"""`odqa re train|evaluate|predict|export-text`: KLUE relation extraction."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import DeviceOpt, JsonOpt, MixedPrecisionOpt, QuietOpt, echo, emit_json
from odqa.cli.train_options import (epochs_opt, freeze_embeddings_opt, lr_opt, max_steps_opt, resume_opt, seed_opt,
                                    stop_after_opt, time_budget_opt)

app = typer.Typer(no_args_is_help=True, help="KLUE relation extraction: train, evaluate, predict, export text.")

LabelsOpt = typer.Option(None, "--labels", help="relation_list.json (default: the one beside the data file, "
                                                "else KLUE's 30 labels).")


@app.command("train")
def train(
    train_file: Path = typer.Option(..., "--train", help="Training data: KLUE-RE JSON/JSONL or Boostcamp CSV."),
    dev_file: Optional[Path] = typer.Option(None, "--dev", help="Dev data to select the best checkpoint by micro-F1."),
    out: Path = typer.Option(Path("runs/re"), "--out", help="Output folder: best/ (the model), last/ (resumable)."),
    labels: Optional[Path] = LabelsOpt,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config (see configs/re.yaml)."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Override a config field: --set loss=focal"),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="Backbone spec (offline:multilingual-e5-small, "
                                                                     "a folder, e.g. an `odqa pretrain` output)."),
    markers: Optional[str] = typer.Option(None, "--markers", help="Entity markers: typed | e1 | none."),
    pooling: Optional[str] = typer.Option(None, "--pooling", help="entity_start | cls | mean."),
    head: Optional[str] = typer.Option(None, "--head", help="Head body: linear | cnn | lstm."),
    hierarchical: Optional[bool] = typer.Option(None, "--hierarchical/--flat",
                                                help="Family (no_relation/org/per) then label within the family."),
    loss: Optional[str] = typer.Option(None, "--loss", help="ce | focal | label_smoothing."),
    focal_gamma: Optional[float] = typer.Option(None, "--focal-gamma"),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Epsilon for --loss label_smoothing."),
    no_relation_keep: Optional[float] = typer.Option(None, "--no-relation-keep",
                                                     help="Share of no_relation examples kept each epoch (1 = all)."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Tokens per example (entities kept)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = lr_opt(None),
    epochs: Optional[float] = epochs_opt(None),
    max_steps: Optional[int] = max_steps_opt(None),
    stop_after: Optional[int] = stop_after_opt(None),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Steps between dev evaluations (0 = each epoch)."),
    dev_limit: Optional[int] = typer.Option(None, "--dev-limit", help="Evaluate on a fixed random subset (0 = all)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stopping: evaluations without gain (0 = off)."),
    time_budget: Optional[float] = time_budget_opt(None),
    freeze_embeddings: Optional[bool] = freeze_embeddings_opt(None),
    augment: Optional[str] = typer.Option(None, "--augment", help="none | aeda (add a copy of each training sentence "
                                          "with random punctuation between its words; --set aeda_ratio=..., aeda_copies=...)."),
    seed: Optional[int] = seed_opt(None),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (0 = default)."),
    resume: bool = resume_opt("Continue from OUT/last (same settings and labels)."),
    device: str = DeviceOpt,
    mixed_precision: str = MixedPrecisionOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune a backbone + classification head on KLUE-RE.

    Example: odqa re train --train klue-re-train-subset.json --dev klue-re-dev-public.json
    --backbone offline:multilingual-e5-small --out runs/re --time-budget 85
    """
    from odqa.api.training import re_train_request, train_re

    # --device / --mixed-precision other than auto override the config file's train section
    runtime = [f"train.{k}={v}" for k, v in (("device", device), ("mixed_precision", mixed_precision)) if v != "auto"]
    cfg = re_train_request(train_file, out, dev_file, labels, resume, config, list(overrides or []) + runtime, backbone=backbone,
                           markers=markers, pooling=pooling, head=head, hierarchical=hierarchical, loss=loss,
                           focal_gamma=focal_gamma, label_smoothing=label_smoothing,
                           no_relation_keep=no_relation_keep, max_length=max_length, batch_size=batch_size, lr=lr,
                           epochs=epochs, max_steps=max_steps, stop_after=stop_after, eval_every=eval_every,
                           dev_limit=dev_limit, patience=patience, time_budget=time_budget,
                           freeze_embeddings=freeze_embeddings, seed=seed, threads=threads, augment=augment)
    report = train_re(cfg, quiet=quiet or json_out).to_json()
    if json_out:
        emit_json(report)
        return
    b = report["best"]
    if "micro_f1" in b:
        echo(f"best dev micro-F1 {b['micro_f1']:.2f}, AUPRC {b['auprc']:.2f} at step {report['best_step']} "
             f"({report['steps']} steps, {report['minutes']} min, {report['stopped']})")
    else:
        echo(f"trained {report['steps']} steps ({report['minutes']} min, {report['stopped']}); no --dev: kept the "
             f"lowest training loss")
    echo(f"model saved to {out / 'best'}: odqa re evaluate --model {out / 'best'} --data DEV.json")


@app.command("evaluate")
def evaluate(
    model_dir: Optional[str] = typer.Option(None, "--model", help="Checkpoint folder (e.g. runs/re/best) or a shipped model name; default: the shipped ko-re."),
    data: Path = typer.Option(..., "--data", help="Labelled KLUE-RE JSON/JSONL or Boostcamp CSV."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Refuse the model unless it uses this label list."),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Score a model with KLUE's metrics: micro-F1 (no_relation excluded) and AUPRC.

    Example: odqa re evaluate --model ko-re --data klue-re-dev-public.json --json
    """
    from odqa.api.training import REEvaluateRequest, evaluate_re

    cfg = REEvaluateRequest(model=model_dir, data=data, labels=labels, batch_size=batch_size, device=device)
    report = evaluate_re(cfg, quiet=quiet or json_out).to_json()
    if json_out:
        emit_json(report)
        return
    echo(f"{report['examples']} examples: micro-F1 {report['micro_f1']:.2f}  AUPRC {report['auprc']:.2f}  "
         f"accuracy {report['accuracy']:.2f}  loss {report['loss']:.4f}")


@app.command("predict")
def predict(
    model_dir: Optional[str] = typer.Option(None, "--model", help="Checkpoint folder (e.g. runs/re/best) or a shipped model name; default: the shipped ko-re."),
    data: Path = typer.Option(..., "--data", help="KLUE-RE JSON/JSONL or Boostcamp CSV (labels ignored)."),
    out: Path = typer.Option(..., "--out", help="Predictions file: .csv (id, pred_label, probs) or .json."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | json (default: from the --out suffix)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Refuse the model unless it uses this label list."),
    batch_size: int = typer.Option(64, "--batch-size"),
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Predict relations; write the submission CSV (id, pred_label, 30 probabilities) or JSON.

    Example: odqa re predict --model runs/re/best --data test_data.csv --out submission.csv
    """
    from odqa.api.training import REPredictRequest, predict_re

    cfg = REPredictRequest(model=model_dir, data=data, out=out, format=fmt, labels=labels, batch_size=batch_size, device=device)
    report = predict_re(cfg, quiet=quiet or json_out).to_json()
    if json_out:
        emit_json(report)
        return
    counts = report["predicted_labels"]
    echo(f"wrote {report['predictions']} predictions to {out} ({report['format']}); {counts.get('no_relation', 0)} "
         f"no_relation" + (f"; {report['skipped']} records skipped (no prediction)" if report["skipped"] else ""))


@app.command("export-text")
def export_text_cmd(
    train_files: List[Path] = typer.Option(..., "--train", help="KLUE-RE JSON/JSONL or CSV (repeatable)."),
    out: Path = typer.Option(..., "--out", help="JSONL corpus {id, title, text} for `odqa pretrain --corpus`."),
    keep: float = typer.Option(1.0, "--undersample-no-relation",
                               help="Share of no_relation records kept (1 = all; e.g. 0.3)."),
    seed: int = seed_opt(),
    json_out: bool = JsonOpt,
) -> None:
    """Write the distinct RE sentences as a pretraining corpus (optionally no_relation-undersampled).

    Example: odqa re export-text --train klue-re-train-subset.json --out re_text.jsonl --undersample-no-relation 0.3
    """
    from odqa.api.training import REExportRequest, export_re_text

    report = export_re_text(REExportRequest(train_files=train_files, out=out, no_relation_keep=keep, seed=seed)).to_json()
    if json_out:
        emit_json(report)
        return
    echo(f"wrote {report['sentences']} distinct sentences (from {report['records']} records) to {out}")
