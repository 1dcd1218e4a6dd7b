"""`odqa pretrain`: the request, the run (chunks, task, loop, publishing) and its result."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from odqa.config import with_changes
from odqa.errors import OdqaError
from odqa.pretraining.features import build_chunks
from odqa.pretraining.masking import REPLACE, mean_span_length
from odqa.pretraining.model import load_mlm
from odqa.pretraining.publish import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, publish
from odqa.pretraining.config import PretrainConfig
from odqa.pretraining.task import PretrainTask
from odqa.version import __version__


def _check_resumable(run_dir: Path, base: dict) -> None:
    """A resumed run must see the same corpus, backbone and masking settings as the checkpoint."""
    path = run_dir / "last" / MANIFEST
    if not path.exists():
        raise OdqaError(f"cannot resume: no checkpoint at {run_dir / 'last'} (pretrain once without `resume`)")
    try:
        prev = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise OdqaError(f"{path}: malformed JSON; cannot resume") from None
    for what, a, b in (("corpus", prev.get("corpus", {}).get("sha256"), base["corpus"]["sha256"]),
                       ("backbone", prev.get("base_backbone"), base["base_backbone"]),
                       ("settings", prev.get("config"), base["config"])):
        if a != b:
            raise OdqaError(f"cannot resume {run_dir}: {what} changed since the checkpoint "
                            "(start a new run without `resume`, or use another `run_dir`)")


# the optimisation fields of the TrainConfig recorded in a pretrained backbone's manifest
PUBLISHED_TRAIN_FIELDS = ("lr", "weight_decay", "warmup_ratio", "batch_size", "grad_accum", "epochs", "max_steps",
                          "stop_after", "eval_every", "save_every", "time_budget_minutes", "seed")


def run_pretrain(corpus: str | Path, out: str | Path, cfg: PretrainConfig | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, quiet: bool = False) -> dict:
    """Pretrain `cfg.backbone` on `corpus` and publish a backbone folder at `out`.

    Checkpoints, history and the resumable state live in `run_dir` (default: OUT.run next to
    OUT). Returns the report (also stored in the manifest). Usable from tests:

        run_pretrain(corpus, tmp / "pt", PretrainConfig(backbone=str(tiny), max_length=32,
                                                        train=TrainConfig(max_steps=2, batch_size=4)), quiet=True)
        tokenizer, model = load_backbone(str(tmp / "pt"))
    """
    from odqa.corpus import load_corpus
    from odqa.modeling.backbone import backbone_info, wants_e5_prefixes
    from odqa.optimization import frozen_prefixes
    from odqa.training import train

    cfg = cfg or PretrainConfig()
    run = cfg.train
    out = Path(out)
    run_dir = Path(run_dir) if run_dir else out.with_name(out.name + ".run")
    if run_dir.resolve() == out.resolve():
        raise OdqaError("the run folder must differ from the output folder")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise OdqaError(f"{out} exists and is not a pretrained backbone folder: refusing to replace it")
    t0 = time.perf_counter()
    info = backbone_info(cfg.backbone)
    corp = load_corpus(corpus, cfg.corpus_format)
    tokenizer, model, head = load_mlm(cfg.backbone)
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and cfg.max_length > positions:
        raise OdqaError(f"`max_length` {cfg.max_length} exceeds the backbone's {positions} positions")
    chunks = build_chunks([p.text for p in corp.passages], tokenizer, cfg, quiet)
    base = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "odqa_version": __version__,
            "base_backbone": cfg.backbone, "base_backbone_info": info.to_dict(),
            "corpus": {"path": corp.source, "sha256": corp.sha256, "passages": len(corp.passages)},
            "config": cfg.masking(), "mask": {"ratio": cfg.mask_ratio, "replace": list(REPLACE),
                                             "mean_span_length": round(mean_span_length(cfg.span_p, cfg.max_span), 4)
                                             if cfg.objective == "span" else 1.0},
            "mlm_head": head}
    if cfg.align == "morpheme":
        from odqa.text.morphs import analyzer_version
        base["analyzer"] = {"name": cfg.analyzer, "version": analyzer_version(cfg.analyzer)}
    if resume:
        _check_resumable(run_dir, base)
    task = PretrainTask(tokenizer, chunks, cfg, run.batch_size, run.seed, wants_e5_prefixes(info.path), base)
    base["corpus"].update(chunks_train=len(task.train), chunks_heldout=len(task.heldout),
                          train_tokens=int(sum(len(c.ids) for c in task.train)))
    # the task decides what is measured and frozen; the caller the optimisation and the budget
    tcfg = with_changes(run, metric="loss", greater_is_better=False,
                        freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    before = None if resume else task.evaluate(model).get("loss")
    res = train(model, task, tcfg, run_dir, resume=resume, quiet=quiet)
    best_state = json.loads((run_dir / "best" / "odqa_train_state.json").read_text())
    report = {"out": str(out), "run_dir": str(run_dir), "objective": cfg.objective, "align": cfg.align,
              "steps": res.steps, "best_step": res.best_step, "heldout_loss_before": before,
              "heldout_loss": res.best_metric, "stopped": res.stopped_reason, "epochs_done": res.epochs_done,
              "seconds": round(time.perf_counter() - t0, 1), "train_seconds": round(res.seconds, 1),
              "seconds_per_step": round(res.seconds / max(1, res.steps), 3) if not resume else None,
              "chunks_train": len(task.train), "chunks_heldout": len(task.heldout), "mlm_head": head}
    manifest = {**base, "steps": best_state.get("step", res.best_step), "total_steps": res.steps,
                "stopped": res.stopped_reason, "time_budget_minutes": run.time_budget_minutes,
                "max_steps": run.max_steps, "train": {k: v for k, v in tcfg.model_dump().items() if k in PUBLISHED_TRAIN_FIELDS},
                "heldout_loss_before": before, "heldout_loss": res.best_metric,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    report["verified"] = publish(run_dir / "best", out, manifest)
    return report


class PretrainRequest(PretrainConfig):
    """`odqa pretrain`: a `PretrainConfig` (masking, chunking, `train: TrainConfig`) and its inputs."""
    corpus: Path                                  # corpus file or folder (JSONL, wiki JSON, SQuAD JSON, .txt)
    out: Path                                     # the published backbone folder
    run_dir: Optional[Path] = None                # checkpoints and history (default: OUT.run)
    resume: bool = False                          # continue from RUN_DIR/last

    def task_config(self) -> PretrainConfig:
        return PretrainConfig(**{k: getattr(self, k) for k in PretrainConfig.model_fields})


@dataclass
class PretrainResult:
    out: str
    run_dir: str
    objective: str
    align: str
    steps: int
    best_step: int
    heldout_loss_before: float | None
    heldout_loss: float | None
    stopped: str
    epochs_done: float
    seconds: float
    train_seconds: float
    seconds_per_step: float | None
    chunks_train: int
    chunks_heldout: int
    mlm_head: dict
    verified: dict

    def to_json(self) -> dict:
        return asdict(self)


def train(request: PretrainRequest, *, quiet: bool = True) -> PretrainResult:
    """Masked-LM domain-adaptive pretraining (span or token masking); OUT is a backbone folder every
    training command takes."""
    from odqa.device import resolve_device
    resolve_device(request.train.device)
    report = run_pretrain(request.corpus, request.out, request.task_config(), request.run_dir,
                          resume=request.resume, quiet=quiet)
    return PretrainResult(**report)
