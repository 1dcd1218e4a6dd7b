"""`odqa re evaluate`: KLUE's metrics (micro-F1 without no_relation, AUPRC), accuracy, loss and per-label F1
of a checkpoint on labelled data."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Union

from pydantic import Field

from odqa.config import Section
from odqa.device import DEVICE_PATTERN


class RECheckpointInputs(Section):
    """A checkpoint to run, the data it reads, and how: what `odqa re evaluate` and `odqa re predict` share."""
    model: Union[str, Path, None] = None          # checkpoint folder (e.g. runs/re/best) or shipped name; None = ko-re
    data: Path                                    # KLUE-RE JSON/JSONL or Boostcamp CSV
    labels: Optional[Path] = None                 # refuse the model unless it uses this label list
    batch_size: int = Field(64, ge=1)
    device: str = Field("auto", pattern=DEVICE_PATTERN)   # auto | cpu | cuda | cuda:N | mps


class REEvaluateRequest(RECheckpointInputs):
    """`odqa re evaluate`: a checkpoint and labelled data."""


@dataclass
class REEvaluateResult:
    model: str
    data: str
    examples: int
    skipped: int
    truncated: int
    seconds: float
    micro_f1: float
    auprc: float
    accuracy: float
    loss: float
    per_label: dict[str, dict]

    def to_json(self) -> dict:
        return asdict(self)


def evaluate(cfg: REEvaluateRequest, *, quiet: bool = True) -> REEvaluateResult:
    """KLUE's metrics (micro-F1 without no_relation, AUPRC), accuracy, loss and per-label F1 on labelled data."""
    from odqa.relation.data import load_re, report_skipped
    from odqa.relation.features import featurize
    from odqa.relation.inference import decode, evaluate_probs, predict_probs
    from odqa.relation.metrics import per_label_f1
    from odqa.relation.model import DEFAULT_RE_MODEL, load_re_checkpoint
    tokenizer, model, settings = load_re_checkpoint(cfg.model, cfg.labels, cfg.device)
    ds = load_re(cfg.data, settings.labels)
    report_skipped(ds)
    t0 = time.perf_counter()
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length, settings.labels)
    probs = predict_probs(model, feats, settings, cfg.batch_size, quiet, "evaluate")
    metrics = {k: round(v, 4) for k, v in evaluate_probs(probs, feats.labels, settings).items()}
    return REEvaluateResult(str(cfg.model or DEFAULT_RE_MODEL), str(cfg.data), len(ds.examples), len(ds.skipped),
                            feats.truncated, round(time.perf_counter() - t0, 1), metrics["micro_f1"],
                            metrics["auprc"], metrics["accuracy"], metrics["loss"],
                            per_label_f1(decode(probs, settings), feats.labels, settings.labels))
