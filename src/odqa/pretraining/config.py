"""The pretraining task's settings: masking, chunking, the backbone and the shared loop's `TrainConfig`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from odqa.config import Section
from odqa.training import TrainConfig


def _pretrain_train_defaults() -> TrainConfig:
    return TrainConfig(lr=5e-5)


class PretrainConfig(Section):
    """Masking, chunking and the backbone; `train` is the shared loop's settings (lr 5e-5 by default). Checked
    when made: a bad value is one ConfigError line naming its field."""
    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    objective: Literal["span", "token"] = "span"
    align: Literal["none", "word", "morpheme"] = "none"
    analyzer: Literal["mecab", "kiwi"] = "mecab"   # morpheme analyzer for align=morpheme
    max_length: int = Field(256, ge=8)           # tokens per chunk, specials included
    mask_ratio: float = Field(0.15, gt=0, lt=1)
    span_p: float = Field(0.2, gt=0, le=1)       # geometric parameter of span lengths
    max_span: int = Field(10, ge=1)              # longest span, in units
    holdout: float = Field(0.02, ge=0, lt=0.5)   # share of chunks held out for the evaluation loss
    max_eval_chunks: int = Field(512, ge=1)
    freeze_embeddings: bool = True               # word embeddings (and the tied output projection) stay fixed
    head_warmup_steps: int = Field(0, ge=0)      # first optimizer steps train the MLM head only (encoder untouched)
    corpus_format: Literal["auto", "wiki", "jsonl", "squad", "txt"] = "auto"
    train: TrainConfig = Field(default_factory=_pretrain_train_defaults)

    def masking(self) -> dict:
        """The settings a resumed run must share with its checkpoint (all but the loop's)."""
        return self.model_dump(exclude={"train"})
