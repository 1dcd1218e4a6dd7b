"""`odqa re train|evaluate|predict|export-text`: KLUE relation extraction."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import JsonOpt, QuietOpt, echo, emit_json, warn

app = typer.Typer(no_args_is_help=True, help="KLUE relation extraction: train, evaluate, predict, export text.")

LabelsOpt = typer.Option(None, "--labels", help="relation_list.json (default: the one beside the data file, "
                                                "else KLUE's 30 labels).")


def _report_skipped(data) -> None:
    if data.skipped:
        where, why = data.skipped[0]
        warn(f"{data.path}: skipped {len(data.skipped)} record(s) whose entity offsets do not match the word "
             f"(first: {where}: {why})")


def _labels(path: Optional[Path], data_file: Path) -> list[str]:
    from odqa.relation.data import default_label_file, load_labels
    return load_labels(path or default_label_file(data_file))


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
    lr: Optional[float] = typer.Option(None, "--lr"),
    epochs: Optional[float] = typer.Option(None, "--epochs"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps (0 = epochs)."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", help="Stop at this step, keeping the schedule of "
                                             "--epochs (shared-budget comparisons; 0 = off)."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every", help="Steps between dev evaluations (0 = each epoch)."),
    dev_limit: Optional[int] = typer.Option(None, "--dev-limit", help="Evaluate on a fixed random subset (0 = all)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stopping: evaluations without gain (0 = off)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Minutes; stop, evaluate and save when reached."),
    freeze_embeddings: Optional[bool] = typer.Option(None, "--freeze-embeddings/--train-embeddings"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch threads (0 = default)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/last (same settings and labels)."),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Fine-tune a backbone + classification head on KLUE-RE.

    Example: odqa re train --train klue-re-train-subset.json --dev klue-re-dev-public.json
    --backbone offline:multilingual-e5-small --out runs/re --time-budget 85
    """
    import dataclasses
    import time

    from odqa.config import load_config
    from odqa.errors import OdqaError
    from odqa.modeling.checkpoint import read_meta
    from odqa.relation.data import load_re
    from odqa.relation.task import RESettings, RETask, RETrainConfig, build_re_model
    from odqa.training import TrainConfig, frozen_prefixes, train as run_training

    cfg = load_config(config, list(overrides or []), RETrainConfig)
    flags = dict(backbone=backbone, markers=markers, pooling=pooling, head=head, hierarchical=hierarchical, loss=loss,
                 focal_gamma=focal_gamma, label_smoothing=label_smoothing, no_relation_keep=no_relation_keep,
                 max_length=max_length, batch_size=batch_size, lr=lr, epochs=epochs, max_steps=max_steps,
                 stop_after=stop_after, eval_every=eval_every, dev_limit=dev_limit, patience=patience, time_budget=time_budget,
                 freeze_embeddings=freeze_embeddings, seed=seed, threads=threads)
    for k, v in flags.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg = RETrainConfig(**dataclasses.asdict(cfg))   # validate the merged values
    label_list = _labels(labels, train_file)
    settings = RESettings(label_list, cfg.markers, cfg.pooling, cfg.hierarchical, cfg.max_length)
    if resume:
        last = out / "last"
        if not last.is_dir():
            raise OdqaError(f"cannot resume: no checkpoint at {last} (train once without --resume)")
        prev = RESettings.from_extra(read_meta(last).get("extra", {}), str(last))
        prev.check(settings, str(last))
        if prev.train.get("backbone", cfg.backbone) != cfg.backbone:
            raise OdqaError(f"{last}: the checkpoint started from backbone {prev.train['backbone']!r}, "
                            f"not {cfg.backbone!r}")
    train_data = load_re(train_file, label_list)
    _report_skipped(train_data)
    dev_data = load_re(dev_file, label_list) if dev_file else None
    if dev_data:
        _report_skipped(dev_data)
    if cfg.markers == "e1" and cfg.freeze_embeddings:
        warn("--markers e1 with frozen word embeddings: the new [E1]..[/E2] embeddings stay at their initial "
             "values (use --train-embeddings to learn them)")
    t0 = time.perf_counter()
    tokenizer, model, settings = build_re_model(cfg, label_list)
    settings.train = {**dataclasses.asdict(cfg), "train_file": str(train_file),
                      "dev_file": str(dev_file) if dev_file else None}
    task = RETask(tokenizer, settings, cfg, train_data.examples, dev_data.examples if dev_data else None,
                  quiet=quiet or json_out)
    tcfg = TrainConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, epochs=cfg.epochs,
                       max_steps=cfg.max_steps, stop_after=cfg.stop_after, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                       eval_every=cfg.eval_every, early_stopping_patience=cfg.patience,
                       metric="micro_f1" if dev_data else "loss", greater_is_better=bool(dev_data), seed=cfg.seed,
                       num_threads=cfg.threads, time_budget_minutes=cfg.time_budget,
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    res = run_training(model, task, tcfg, out, resume=resume, quiet=quiet or json_out)
    best_row = next((r for r in res.history if r["step"] == res.best_step), {})
    report = {"out": str(out / "best"), "train_examples": len(train_data.examples),
              "train_skipped": len(train_data.skipped), "examples_per_epoch": task.num_examples(),
              "train_truncated": task.train.truncated,
              "dev_examples": len(task.dev) if task.dev is not None else 0,
              "dev_skipped": len(dev_data.skipped) if dev_data else 0,
              "best_step": res.best_step, "steps": res.steps, "epochs_done": res.epochs_done,
              "stopped": res.stopped_reason, "minutes": round((time.perf_counter() - t0) / 60, 1),
              "best": {k: best_row.get(k) for k in ("micro_f1", "auprc", "accuracy", "loss", "train_loss")
                       if k in best_row},
              "config": dataclasses.asdict(cfg)}
    if json_out:
        emit_json(report)
        return
    b = report["best"]
    if "micro_f1" in b:
        echo(f"best dev micro-F1 {b['micro_f1']:.2f}, AUPRC {b['auprc']:.2f} at step {res.best_step} "
             f"({res.steps} steps, {report['minutes']} min, {res.stopped_reason})")
    else:
        echo(f"trained {res.steps} steps ({report['minutes']} min, {res.stopped_reason}); no --dev: kept the "
             f"lowest training loss")
    echo(f"model saved to {out / 'best'}: odqa re evaluate --model {out / 'best'} --data DEV.json")


def _load_for_inference(model_dir: Path, labels: Optional[Path]):
    from odqa.relation.data import load_labels
    from odqa.relation.task import load_re_model
    return load_re_model(model_dir, load_labels(labels) if labels else None)


@app.command("evaluate")
def evaluate(
    model_dir: Path = typer.Option(..., "--model", help="Checkpoint folder (e.g. runs/re/best)."),
    data: Path = typer.Option(..., "--data", help="Labelled KLUE-RE JSON/JSONL or Boostcamp CSV."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Refuse the model unless it uses this label list."),
    batch_size: int = typer.Option(64, "--batch-size"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Score a model with KLUE's metrics: micro-F1 (no_relation excluded) and AUPRC.

    Example: odqa re evaluate --model runs/re/best --data klue-re-dev-public.json --json
    """
    import time

    import numpy as np

    from odqa.relation.data import load_re
    from odqa.relation.task import decode, evaluate_probs, featurize, predict_probs

    tokenizer, model, settings = _load_for_inference(model_dir, labels)
    ds = load_re(data, settings.labels)
    _report_skipped(ds)
    t0 = time.perf_counter()
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length, settings.labels)
    probs = predict_probs(model, feats, settings, batch_size, quiet or json_out, "evaluate")
    metrics = evaluate_probs(probs, feats.labels, settings)
    pred = decode(probs, settings)
    per_label = {}
    for i, lab in enumerate(settings.labels):
        tp = int(np.sum((pred == i) & (feats.labels == i)))
        n_pred, n_gold = int(np.sum(pred == i)), int(np.sum(feats.labels == i))
        f1 = 200.0 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
        per_label[lab] = {"f1": round(f1, 2), "support": n_gold, "predicted": n_pred}
    report = {"model": str(model_dir), "data": str(data), "examples": len(ds.examples), "skipped": len(ds.skipped),
              "truncated": feats.truncated, "seconds": round(time.perf_counter() - t0, 1),
              **{k: round(v, 4) for k, v in metrics.items()}, "per_label": per_label}
    if json_out:
        emit_json(report)
        return
    echo(f"{len(ds.examples)} examples: micro-F1 {metrics['micro_f1']:.2f}  AUPRC {metrics['auprc']:.2f}  "
         f"accuracy {metrics['accuracy']:.2f}  loss {metrics['loss']:.4f}")


@app.command("predict")
def predict(
    model_dir: Path = typer.Option(..., "--model", help="Checkpoint folder (e.g. runs/re/best)."),
    data: Path = typer.Option(..., "--data", help="KLUE-RE JSON/JSONL or Boostcamp CSV (labels ignored)."),
    out: Path = typer.Option(..., "--out", help="Predictions file: .csv (id, pred_label, probs) or .json."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv | json (default: from the --out suffix)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Refuse the model unless it uses this label list."),
    batch_size: int = typer.Option(64, "--batch-size"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Predict relations; write the submission CSV (id, pred_label, 30 probabilities) or JSON.

    Example: odqa re predict --model runs/re/best --data test_data.csv --out submission.csv
    """
    from collections import Counter

    from odqa.relation.data import load_re
    from odqa.relation.predict import write_predictions
    from odqa.relation.task import decode, featurize, predict_probs

    tokenizer, model, settings = _load_for_inference(model_dir, labels)
    ds = load_re(data, require_labels=False)
    _report_skipped(ds)
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length)
    probs = predict_probs(model, feats, settings, batch_size, quiet or json_out, "predict")
    pred = decode(probs, settings)
    used = write_predictions(out, feats.example_ids, probs, settings.labels, fmt, pred)
    counts = Counter(settings.labels[i] for i in pred)
    report = {"out": str(out), "format": used, "predictions": len(feats), "skipped": len(ds.skipped),
              "predicted_labels": dict(counts.most_common())}
    if json_out:
        emit_json(report)
        return
    echo(f"wrote {len(feats)} predictions to {out} ({used}); {counts.get('no_relation', 0)} no_relation"
         + (f"; {len(ds.skipped)} records skipped (no prediction)" if ds.skipped else ""))


@app.command("export-text")
def export_text_cmd(
    train_files: List[Path] = typer.Option(..., "--train", help="KLUE-RE JSON/JSONL or CSV (repeatable)."),
    out: Path = typer.Option(..., "--out", help="JSONL corpus {id, title, text} for `odqa pretrain --corpus`."),
    keep: float = typer.Option(1.0, "--undersample-no-relation",
                               help="Share of no_relation records kept (1 = all; e.g. 0.3)."),
    seed: int = typer.Option(42, "--seed"),
    json_out: bool = JsonOpt,
) -> None:
    """Write the distinct RE sentences as a pretraining corpus (optionally no_relation-undersampled).

    Example: odqa re export-text --train klue-re-train-subset.json --out re_text.jsonl --undersample-no-relation 0.3
    """
    from odqa.relation.data import export_text, load_re, undersample_no_relation

    examples = []
    for f in train_files:
        ds = load_re(f, require_labels=keep < 1.0)
        _report_skipped(ds)
        examples.extend(undersample_no_relation(ds.examples, keep, seed) if keep < 1.0 else ds.examples)
    n = export_text(examples, out)
    report = {"out": str(out), "records": len(examples), "sentences": n, "no_relation_keep": keep}
    if json_out:
        emit_json(report)
        return
    echo(f"wrote {n} distinct sentences (from {len(examples)} records) to {out}")
