"""`odqa re train`: the request (configs/re.yaml, `--set` overrides, flags), the run and its result."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from odqa.config import load_config, validate_config, with_changes
from odqa.relation.config import RETrainConfig

log = logging.getLogger(__name__)


class RETrainRequest(RETrainConfig):
    """`odqa re train`: an `RETrainConfig` (configs/re.yaml, `train: TrainConfig` inside) and its inputs."""
    train_file: Path                              # KLUE-RE JSON/JSONL or Boostcamp CSV
    dev_file: Optional[Path] = None               # selects the best checkpoint by micro-F1
    out: Path = Path("runs/re")                   # best/ (the model), last/ (resumable)
    labels: Optional[Path] = None                 # relation_list.json (default: beside the data, else KLUE's 30)
    resume: bool = False                          # continue from OUT/last (same settings and labels)

    def task_config(self) -> RETrainConfig:
        return RETrainConfig(**{k: getattr(self, k) for k in RETrainConfig.model_fields})


def re_train_request(train_file: str | Path, out: str | Path = "runs/re", dev_file: str | Path | None = None,
                     labels: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
                     overrides: Sequence[str] = (), **flags: Any) -> RETrainRequest:
    """The request `odqa re train` makes: configs/re.yaml's defaults (or the YAML file `config`), then the
    `--set` overrides, then the `flags` given (None = keep; `lr`, `patience`, ... in the flat layout)."""
    base = load_config(config, list(overrides), RETrainConfig).model_dump()
    for key, value in flags.items():
        if value is None:
            continue
        node, parts = base, RETrainConfig.renamed.get(key, key).split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return validate_config(RETrainRequest, {**base, "train_file": train_file, "out": out, "dev_file": dev_file,
                                            "labels": labels, "resume": resume})


@dataclass
class RETrainResult:
    out: str
    train_examples: int
    train_skipped: int
    examples_per_epoch: int
    train_truncated: int
    dev_examples: int
    dev_skipped: int
    best_step: int
    steps: int
    epochs_done: float
    stopped: str
    minutes: float
    best: dict
    config: dict        # the config in the flat layout, plus its `train` section

    def to_json(self) -> dict:
        return asdict(self)


def train(cfg: RETrainRequest, *, quiet: bool = True) -> RETrainResult:
    """Fine-tune backbone + classification head on KLUE-RE; the best checkpoint by dev micro-F1 (by training
    loss without a dev file) in OUT/best, resumable from OUT/last."""
    from odqa.device import resolve_device
    from odqa.relation.data import default_label_file, load_labels, load_re, report_skipped
    from odqa.relation.model import RESettings, build_re_model, check_resumable
    from odqa.relation.task import RETask
    from odqa.optimization import frozen_prefixes
    from odqa.training import train as run_training
    resolve_device(cfg.train.device)
    label_list = load_labels(cfg.labels if cfg.labels else default_label_file(cfg.train_file))
    settings = RESettings(label_list, cfg.markers, cfg.pooling, cfg.hierarchical, cfg.max_length)
    if cfg.resume:
        check_resumable(cfg.out / "last", settings, cfg.backbone)
    train_data = load_re(cfg.train_file, label_list)
    report_skipped(train_data)
    dev_data = load_re(cfg.dev_file, label_list) if cfg.dev_file else None
    if dev_data:
        report_skipped(dev_data)
    if cfg.markers == "e1" and cfg.freeze_embeddings:
        log.warning("--markers e1 with frozen word embeddings: the new [E1]..[/E2] embeddings stay at their initial "
                    "values (learn them with `freeze_embeddings` off)")
    task_cfg = cfg.task_config()
    config = {**task_cfg.flat(), "train": task_cfg.train.model_dump()}
    t0 = time.perf_counter()
    tokenizer, model, settings = build_re_model(task_cfg, label_list)
    settings.train = {**config, "train_file": str(cfg.train_file),
                      "dev_file": str(cfg.dev_file) if cfg.dev_file else None}
    examples = train_data.examples
    if cfg.augment == "aeda":
        from odqa.relation.aeda import augment_examples
        examples = augment_examples(examples, cfg.aeda_copies, cfg.aeda_ratio, cfg.aeda_marks, cfg.train.seed)
    task = RETask(tokenizer, settings, task_cfg, examples, dev_data.examples if dev_data else None,
                  quiet=quiet)
    run = with_changes(task_cfg.train, metric="micro_f1" if dev_data else "loss", greater_is_better=bool(dev_data),
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    res = run_training(model, task, run, cfg.out, resume=cfg.resume, quiet=quiet)
    best_row = next((r for r in res.history if r["step"] == res.best_step), {})
    return RETrainResult(
        str(cfg.out / "best"), len(train_data.examples), len(train_data.skipped), task.num_examples(),
        task.train.truncated, len(task.dev) if task.dev is not None else 0,
        len(dev_data.skipped) if dev_data else 0, res.best_step, res.steps, res.epochs_done, res.stopped_reason,
        round((time.perf_counter() - t0) / 60, 1),
        {k: best_row[k] for k in ("micro_f1", "auprc", "accuracy", "loss", "train_loss") if k in best_row}, config)
