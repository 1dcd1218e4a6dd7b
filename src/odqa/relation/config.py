"""The relation task's settings (`odqa re train`; configs/re.yaml documents the defaults)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from odqa.config import Section
from odqa.training import TrainConfig


def _re_train_defaults() -> TrainConfig:
    return TrainConfig(lr=1e-4, epochs=3.0, batch_size=32)


class RETrainConfig(Section):
    """Every knob of `odqa re train`; `configs/re.yaml` documents the defaults. The optimisation, budget
    and seed are the shared loop's `train: TrainConfig`; the older flat layout (`lr: ...` at the top,
    `patience`, `time_budget`, `threads`) is still read, and `--set lr=...` still works."""
    renamed: ClassVar[dict[str, str]] = {
        **{k: f"train.{k}" for k in ("lr", "weight_decay", "warmup_ratio", "epochs", "max_steps", "stop_after",
                                     "batch_size", "grad_accum", "eval_every", "seed")},
        "patience": "train.early_stopping_patience", "time_budget": "train.time_budget_minutes",
        "threads": "train.num_threads"}

    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    markers: Literal["typed", "e1", "none"] = "typed"
    pooling: Literal["entity_start", "cls", "mean"] = "entity_start"
    head: Literal["linear", "cnn", "lstm"] = "linear"   # head body
    dropout: float = Field(0.1, ge=0, lt=1)
    hierarchical: bool = False
    max_length: int = Field(128, ge=8)
    loss: Literal["ce", "focal", "label_smoothing"] = "ce"
    focal_gamma: float = Field(2.0, ge=0)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    no_relation_keep: float = Field(1.0, ge=0, le=1)   # share of no_relation training examples kept (resampled each epoch)
    class_weight: float = Field(0.0, ge=0)   # loss weight of label c = (n_most / n_c) ** this (0 = none, 0.5 = inverse sqrt)
    freeze_embeddings: bool = True
    bucket: int = Field(50, ge=0)            # batches per length-sorted chunk; 0 = no length sorting
    eval_batch_size: int = Field(64, ge=1)
    dev_limit: int = Field(0, ge=0)          # evaluate on a fixed random subset of the dev set; 0 = all
    augment: Literal["none", "aeda"] = "none"   # aeda: add AEDA copies of the training examples (relation/aeda.py)
    aeda_copies: int = Field(1, ge=1)        # augmented copies per training example
    aeda_ratio: float = Field(0.3, gt=0, le=1)   # at most this share of a sentence's words get a mark before them
    aeda_marks: str = Field(".;?:!,", min_length=1)   # the punctuation marks drawn from
    train: TrainConfig = Field(default_factory=_re_train_defaults)

    @model_validator(mode="after")
    def _class_weight_needs_ce_or_focal(self):
        if self.class_weight and self.loss == "label_smoothing":
            raise ValueError(f"class_weight goes with loss ce or focal, not label_smoothing (got {self.class_weight})")
        return self

    def flat(self) -> dict[str, Any]:
        """The config in the older flat layout (what `odqa re train --json` reports as `config`, plus `train`)."""
        out = self.model_dump(exclude={"train"})
        train = self.train.model_dump()
        out.update({old: train[new.split(".", 1)[1]] for old, new in self.renamed.items()})
        return out
