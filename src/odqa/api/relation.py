"""KLUE relation extraction from Python: train, evaluate, predict, export the sentences as text.

`odqa re ...` only turns flags into these calls; resume checks, the config merge and the
per-label report live here.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from odqa.errors import ModelError

log = logging.getLogger(__name__)


def _report_skipped(data) -> None:
    if data.skipped:
        where, why = data.skipped[0]
        log.warning(f"{data.path}: skipped {len(data.skipped)} record(s) whose entity offsets do not match the word "
                    f"(first: {where}: {why})")


def re_labels(path: str | Path | None, data_file: str | Path) -> list[str]:
    from odqa.relation.data import default_label_file, load_labels
    return load_labels(Path(path) if path else default_label_file(Path(data_file)))


def re_config(config: str | Path | None = None, overrides: Sequence[str] = (), **flags: Any):
    """RETrainConfig from configs/re.yaml's defaults (or `config`), `--set` overrides, then flags (None = keep)."""
    from odqa.config import load_config
    from odqa.relation.task import RETrainConfig
    cfg = load_config(config, list(overrides), RETrainConfig)
    merged = {**dataclasses.asdict(cfg), **{k: v for k, v in flags.items() if v is not None}}
    return RETrainConfig(**merged)          # validates the merged values


def _check_resume(last: Path, settings, backbone: str) -> None:
    from odqa.modeling.checkpoint import read_meta
    from odqa.relation.task import RESettings
    if not last.is_dir():
        raise ModelError(f"cannot resume: no checkpoint at {last} (train once without --resume)")
    prev = RESettings.from_extra(read_meta(last).get("extra", {}), str(last))
    prev.check(settings, str(last))
    if prev.train.get("backbone", backbone) != backbone:
        raise ModelError(f"{last}: the checkpoint started from backbone {prev.train['backbone']!r}, not {backbone!r}")


def train_re(cfg, train_file: str | Path, out: str | Path, dev_file: str | Path | None = None,
             labels: str | Path | None = None, resume: bool = False, quiet: bool = True) -> dict:
    """Fine-tune backbone + classification head on KLUE-RE; the report `odqa re train --json` prints."""
    from odqa.relation.data import load_re
    from odqa.relation.task import RESettings, RETask, build_re_model
    from odqa.training import TrainConfig, frozen_prefixes, train as run_training
    out = Path(out)
    label_list = re_labels(labels, train_file)
    settings = RESettings(label_list, cfg.markers, cfg.pooling, cfg.hierarchical, cfg.max_length)
    if resume:
        _check_resume(out / "last", settings, cfg.backbone)
    train_data = load_re(train_file, label_list)
    _report_skipped(train_data)
    dev_data = load_re(dev_file, label_list) if dev_file else None
    if dev_data:
        _report_skipped(dev_data)
    if cfg.markers == "e1" and cfg.freeze_embeddings:
        log.warning("--markers e1 with frozen word embeddings: the new [E1]..[/E2] embeddings stay at their initial "
                    "values (use --train-embeddings to learn them)")
    t0 = time.perf_counter()
    tokenizer, model, settings = build_re_model(cfg, label_list)
    settings.train = {**dataclasses.asdict(cfg), "train_file": str(train_file),
                      "dev_file": str(dev_file) if dev_file else None}
    task = RETask(tokenizer, settings, cfg, train_data.examples, dev_data.examples if dev_data else None, quiet=quiet)
    tcfg = TrainConfig(lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, epochs=cfg.epochs,
                       max_steps=cfg.max_steps, stop_after=cfg.stop_after, batch_size=cfg.batch_size,
                       grad_accum=cfg.grad_accum, eval_every=cfg.eval_every, early_stopping_patience=cfg.patience,
                       metric="micro_f1" if dev_data else "loss", greater_is_better=bool(dev_data), seed=cfg.seed,
                       num_threads=cfg.threads, time_budget_minutes=cfg.time_budget,
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    res = run_training(model, task, tcfg, out, resume=resume, quiet=quiet)
    best_row = next((r for r in res.history if r["step"] == res.best_step), {})
    return {"out": str(out / "best"), "train_examples": len(train_data.examples),
            "train_skipped": len(train_data.skipped), "examples_per_epoch": task.num_examples(),
            "train_truncated": task.train.truncated,
            "dev_examples": len(task.dev) if task.dev is not None else 0,
            "dev_skipped": len(dev_data.skipped) if dev_data else 0,
            "best_step": res.best_step, "steps": res.steps, "epochs_done": res.epochs_done,
            "stopped": res.stopped_reason, "minutes": round((time.perf_counter() - t0) / 60, 1),
            "best": {k: best_row.get(k) for k in ("micro_f1", "auprc", "accuracy", "loss", "train_loss")
                     if k in best_row},
            "config": dataclasses.asdict(cfg)}


def _load(model_dir: str | Path, labels: str | Path | None):
    from odqa.relation.data import load_labels
    from odqa.relation.task import load_re_model
    return load_re_model(Path(model_dir), load_labels(Path(labels)) if labels else None)


def per_label_f1(pred, gold, labels: list[str]) -> dict[str, dict]:
    import numpy as np
    out = {}
    for i, lab in enumerate(labels):
        tp = int(np.sum((pred == i) & (gold == i)))
        n_pred, n_gold = int(np.sum(pred == i)), int(np.sum(gold == i))
        out[lab] = {"f1": round(200.0 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0, 2), "support": n_gold,
                    "predicted": n_pred}
    return out


def evaluate_re(model_dir: str | Path, data: str | Path, labels: str | Path | None = None, batch_size: int = 64,
                quiet: bool = True) -> dict:
    """KLUE's metrics (micro-F1 without no_relation, AUPRC) and per-label F1 of a model on labelled data."""
    from odqa.relation.data import load_re
    from odqa.relation.task import decode, evaluate_probs, featurize, predict_probs
    tokenizer, model, settings = _load(model_dir, labels)
    ds = load_re(data, settings.labels)
    _report_skipped(ds)
    t0 = time.perf_counter()
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length, settings.labels)
    probs = predict_probs(model, feats, settings, batch_size, quiet, "evaluate")
    metrics = evaluate_probs(probs, feats.labels, settings)
    return {"model": str(model_dir), "data": str(data), "examples": len(ds.examples), "skipped": len(ds.skipped),
            "truncated": feats.truncated, "seconds": round(time.perf_counter() - t0, 1),
            **{k: round(v, 4) for k, v in metrics.items()},
            "per_label": per_label_f1(decode(probs, settings), feats.labels, settings.labels)}


def predict_re(model_dir: str | Path, data: str | Path, out: str | Path, fmt: str | None = None,
               labels: str | Path | None = None, batch_size: int = 64, quiet: bool = True) -> dict:
    """Predict relations and write the submission CSV (id, pred_label, probabilities) or JSON."""
    from odqa.relation.data import load_re
    from odqa.relation.predict import write_predictions
    from odqa.relation.task import decode, featurize, predict_probs
    tokenizer, model, settings = _load(model_dir, labels)
    ds = load_re(data, require_labels=False)
    _report_skipped(ds)
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length)
    probs = predict_probs(model, feats, settings, batch_size, quiet, "predict")
    pred = decode(probs, settings)
    used = write_predictions(Path(out), feats.example_ids, probs, settings.labels, fmt, pred)
    counts = Counter(settings.labels[i] for i in pred)
    return {"out": str(out), "format": used, "predictions": len(feats), "skipped": len(ds.skipped),
            "predicted_labels": dict(counts.most_common())}


def export_re_text(train_files: Sequence[str | Path], out: str | Path, keep: float = 1.0, seed: int = 42) -> dict:
    """The distinct RE sentences as a JSONL corpus (optionally with no_relation undersampled)."""
    from odqa.relation.data import export_text, load_re, undersample_no_relation
    examples = []
    for f in train_files:
        ds = load_re(f, require_labels=keep < 1.0)
        _report_skipped(ds)
        examples.extend(undersample_no_relation(ds.examples, keep, seed) if keep < 1.0 else ds.examples)
    n = export_text(examples, Path(out))
    return {"out": str(out), "records": len(examples), "sentences": n, "no_relation_keep": keep}
