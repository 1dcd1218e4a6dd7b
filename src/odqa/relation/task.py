"""Relation extraction as a task of the shared training loop: `RETask`.

Batches: dynamic padding; examples are shuffled, then sorted by length within chunks of `bucket`
batches, so batches hold similar lengths (less padding on CPU). The loss takes the label
log-probabilities (flat or hierarchical, `relation.model`); evaluation is micro-F1 on the dev set.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import torch
from odqa.modeling.losses import LossConfig, make_loss
from odqa.relation.config import RETrainConfig
from odqa.relation.data import NO_RELATION, REExample
from odqa.relation.features import featurize
from odqa.relation.inference import evaluate_probs, predict_probs
from odqa.relation.model import Hierarchy, RESettings, log_probs, output_logits


def class_weights(labels: np.ndarray, n_labels: int, power: float) -> torch.Tensor | None:
    """Loss weights (n_most / n_c) ** power from the training label counts (None for power 0): rare
    labels weigh more, which moves their probabilities up the ranking KLUE's macro AUPRC averages."""
    if not power:
        return None
    counts = np.maximum(np.bincount(labels, minlength=n_labels), 1).astype(np.float64)
    return torch.tensor((counts.max() / counts) ** power, dtype=torch.float32)


class RETask:
    """The training loop's task: length-bucketed batches, loss, dev evaluation (micro-F1), saving."""

    def __init__(self, tokenizer, settings: RESettings, cfg: RETrainConfig, train: list[REExample],
                 dev: list[REExample] | None, quiet: bool = False):
        self.tok, self.settings, self.cfg, self.quiet = tokenizer, settings, cfg, quiet
        self.hierarchy = Hierarchy(settings.labels) if settings.hierarchical else None
        self.train = featurize(train, tokenizer, settings.markers, settings.max_length, settings.labels)
        self.class_weights = class_weights(self.train.labels, len(settings.labels), cfg.class_weight)
        self.loss_fn = make_loss(LossConfig(cfg.loss, cfg.focal_gamma, cfg.label_smoothing), self.class_weights)
        self.train_lengths = self.train.lengths()
        no_rel = settings.labels.index(NO_RELATION) if NO_RELATION in settings.labels else -1
        self.neg = np.flatnonzero(self.train.labels == no_rel)
        self.pos = np.flatnonzero(self.train.labels != no_rel)
        self.n_neg = round(cfg.no_relation_keep * len(self.neg))
        self.dev = None
        if dev:
            if cfg.dev_limit and cfg.dev_limit < len(dev):
                dev = random.Random(cfg.train.seed).sample(dev, cfg.dev_limit)
            self.dev = featurize(dev, tokenizer, settings.markers, settings.max_length, settings.labels)

    def num_examples(self) -> int:
        return len(self.pos) + self.n_neg

    def num_train_batches(self) -> int:
        return math.ceil(self.num_examples() / self.cfg.train.batch_size)

    def epoch_indices(self, epoch: int, seed: int) -> list[int]:
        rng = random.Random(seed * 1000 + epoch)
        neg = self.neg.tolist()
        if self.n_neg < len(neg):
            neg = rng.sample(neg, self.n_neg)
        idx = self.pos.tolist() + neg
        rng.shuffle(idx)
        return idx

    def train_batches(self, epoch: int, seed: int):
        rng = random.Random(seed * 1000 + epoch + 7919)
        idx, bs = self.epoch_indices(epoch, seed), self.cfg.train.batch_size
        chunk = bs * self.cfg.bucket if self.cfg.bucket else len(idx)
        batches = []
        for c in range(0, len(idx), chunk):
            part = idx[c:c + chunk]
            if self.cfg.bucket:
                part = sorted(part, key=lambda i: self.train_lengths[i])
            batches.extend(part[s:s + bs] for s in range(0, len(part), bs))
        if self.cfg.bucket:
            rng.shuffle(batches)
        for b in batches:
            yield self.train.collate(b)

    def loss(self, model, batch) -> torch.Tensor:
        return self.loss_fn(log_probs(output_logits(model, batch), self.hierarchy), batch["labels"])

    def evaluate(self, model) -> dict[str, float]:
        if self.dev is None:
            return {}
        probs = predict_probs(model, self.dev, self.settings, self.cfg.eval_batch_size, self.quiet, "dev")
        return evaluate_probs(probs, self.dev.labels, self.settings)

    def save(self, model, folder: Path) -> None:
        from odqa.modeling.checkpoint import save_model
        save_model(model, self.tok, folder, extra=self.settings.to_dict())
