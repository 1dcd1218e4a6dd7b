"""Relation extraction on the shared backbone, heads, losses and training loop.

- Model: `modeling.build_model(..., "classification", pooling=cls|mean|entity_start)`.
  With ``entity_start`` pooling the head reads the token states at the subject's and
  object's opening markers (or the first word token when unmarked).
- Hierarchical mode: the head gives F family logits (no_relation / org / per, from
  the label prefix before ``:``) followed by one logit per label; the 30-way
  probabilities are ``P(family) * P(label | family)``, the second a softmax over the
  labels of that family. Losses take these log-probabilities, so cross-entropy is
  exactly CE(family) + CE(label | family). The predicted label is the most probable
  label within the most probable family (`decode`); AUPRC uses the probabilities.
- Features: the marked sentence is tokenised whole; when it is longer than
  `max_length`, a token window that keeps both entities (with their markers) is cut,
  or, when they are too far apart, two half windows starting at each entity.
- Batches: dynamic padding; examples are shuffled, then sorted by length within
  chunks of `bucket` batches, so batches hold similar lengths (less padding on CPU).
- Checkpoints (`save_model`) carry the label list and the RE settings in `extra`;
  `load_re_model` needs no flags and refuses a checkpoint with another label set.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from odqa.config import Section
from odqa.errors import ModelError, OdqaError
from odqa.modeling.heads import HeadConfig
from odqa.modeling.losses import LossConfig, make_loss
from odqa.relation.data import NO_RELATION, REExample, undersample_no_relation
from odqa.relation.markers import mark, special_tokens
from odqa.relation.metrics import re_metrics
from odqa.training import TrainConfig

SETTINGS_VERSION = 1


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


@dataclass
class RESettings:
    """What a checkpoint must remember to featurise and decode like training did."""
    labels: list[str]
    markers: str = "typed"
    pooling: str = "entity_start"
    hierarchical: bool = False
    max_length: int = 128
    version: int = SETTINGS_VERSION
    train: dict[str, Any] = field(default_factory=dict)   # provenance only

    def to_dict(self) -> dict[str, Any]:
        return {"relation": asdict(self)}

    @classmethod
    def from_extra(cls, extra: dict[str, Any], where: str) -> "RESettings":
        d = (extra or {}).get("relation")
        if not isinstance(d, dict) or not d.get("labels"):
            raise ModelError(f"{where}: not a relation extraction checkpoint (no label list in odqa_head.json)")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check(self, other: "RESettings", where: str) -> None:
        """Refuse a checkpoint whose labels or featurisation differ from `other`."""
        if self.labels != other.labels:
            raise ModelError(f"{where}: the checkpoint has another label set ({_label_diff(self.labels, other.labels)})")
        diff = [k for k in ("markers", "pooling", "hierarchical", "max_length") if getattr(self, k) != getattr(other, k)]
        if diff:
            raise ModelError(f"{where}: the checkpoint was made with other settings: " + ", ".join(
                f"{k} {getattr(self, k)!r} (asked {getattr(other, k)!r})" for k in diff))


def check_resumable(last: Path, settings: RESettings, backbone: str) -> None:
    """Refuse to resume from `last` unless it holds a checkpoint of the same labels, featurisation and backbone."""
    from odqa.modeling.checkpoint import read_meta
    if not last.is_dir():
        raise ModelError(f"cannot resume: no checkpoint at {last} (train once without --resume)")
    prev = RESettings.from_extra(read_meta(last).get("extra", {}), str(last))
    prev.check(settings, str(last))
    if prev.train.get("backbone", backbone) != backbone:
        raise ModelError(f"{last}: the checkpoint started from backbone {prev.train['backbone']!r}, not {backbone!r}")


def _label_diff(have: list[str], want: list[str]) -> str:
    only_have, only_want = [x for x in have if x not in want], [x for x in want if x not in have]
    if not only_have and not only_want:
        return "same labels in another order"
    parts = []
    if only_have:
        parts.append("only in checkpoint: " + ", ".join(only_have[:3]) + ("..." if len(only_have) > 3 else ""))
    if only_want:
        parts.append("only in yours: " + ", ".join(only_want[:3]) + ("..." if len(only_want) > 3 else ""))
    return "; ".join(parts)


# ------------------------------------------------------------ hierarchy


class Hierarchy:
    """Families by label prefix (`org:x` -> org, `no_relation` -> no_relation), first-seen order."""

    def __init__(self, labels: list[str]):
        self.families: list[str] = []
        fam_of = []
        for lab in labels:
            fam = lab.split(":", 1)[0] if ":" in lab else lab
            if fam not in self.families:
                self.families.append(fam)
            fam_of.append(self.families.index(fam))
        self.fam_of = torch.tensor(fam_of, dtype=torch.long)
        self.members = torch.zeros(len(self.families), len(labels), dtype=torch.bool)
        self.members[self.fam_of, torch.arange(len(labels))] = True

    @property
    def n_families(self) -> int:
        return len(self.families)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(batch, F + L) head logits -> (batch, L) log P(family) + log P(label | family)."""
        nf = self.n_families
        fam = torch.log_softmax(logits[:, :nf], dim=-1)
        fine = logits[:, nf:]
        members, fam_of = self.members.to(logits.device), self.fam_of.to(logits.device)
        masked = fine.unsqueeze(1).masked_fill(~members, float("-inf"))       # (batch, F, L)
        lse = torch.logsumexp(masked, dim=-1)                                 # (batch, F)
        return fam[:, fam_of] + fine - lse[:, fam_of]


def output_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(batch["input_ids"], batch["attention_mask"], positions=batch["positions"])


def log_probs(logits: torch.Tensor, hierarchy: Hierarchy | None) -> torch.Tensor:
    """Label log-probabilities from head logits (flat softmax or hierarchical composition)."""
    return hierarchy.log_probs(logits) if hierarchy is not None else torch.log_softmax(logits, dim=-1)


# ------------------------------------------------------------- features


@dataclass
class Features:
    ids: list[np.ndarray]
    positions: np.ndarray        # (n, 2): token index of the subject and object anchors
    labels: np.ndarray           # (n,): label index, -1 when unknown
    example_ids: list[str]
    pad_id: int
    truncated: int = 0           # examples cut to fit max_length

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))

    def collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(self.ids[i]) for i in idx)
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            ids[r, :len(self.ids[i])] = self.ids[i]
            mask[r, :len(self.ids[i])] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "positions": torch.from_numpy(self.positions[idx]), "labels": torch.from_numpy(self.labels[idx])}


def _char_token(enc, b: int, char: int, step: int, limit: int) -> int:
    """Token holding `char`, or the nearest one in direction `step` (whitespace has none)."""
    c = char
    while 0 <= c < limit:
        t = enc.char_to_token(b, c)
        if t is not None:
            return t
        c += step
    raise OdqaError(f"no token covers character {char}")


def _window(n: int, budget: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token ranges [a, b) (at most `budget` tokens) of a body of `n` tokens keeping `spans` (inclusive)."""
    if n <= budget:
        return [(0, n)]
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans) + 1
    if hi - lo <= budget:
        start = max(0, min(lo - (budget - (hi - lo)) // 2, n - budget))
        return [(start, start + budget)]
    (s1, _), (s2, _) = sorted(spans)
    half = budget // 2
    a1, b1 = s1, s1 + half
    b2 = min(n, s2 + budget - half)
    a2 = max(b1, b2 - (budget - half))
    return [(a1, b1), (a2, b2)]


def featurize(examples: list[REExample], tokenizer, markers: str, max_length: int,
              labels: list[str] | None = None, chunk: int = 1024) -> Features:
    """Token ids and entity anchor positions for each example (labels mapped when `labels` is given)."""
    index = {lab: i for i, lab in enumerate(labels or [])}
    ids, pos, labs, truncated = [], [], [], 0
    for c0 in range(0, len(examples), chunk):
        part = examples[c0:c0 + chunk]
        marked = [mark(ex.sentence, ex.subject, ex.object, markers) for ex in part]
        enc = tokenizer([m.text for m in marked], add_special_tokens=True, truncation=False, verbose=False)
        for b, (ex, m) in enumerate(zip(part, marked)):
            full = enc["input_ids"][b]
            seq = enc.sequence_ids(b)
            lead = next((i for i, s in enumerate(seq) if s is not None), len(seq))
            trail = next((i for i, s in enumerate(reversed(seq)) if s is not None), 0)
            n = len(full) - lead - trail
            budget = max_length - lead - trail
            limit = len(m.text)
            spans, anchors = [], []
            for sp in (m.subject, m.object):
                a = _char_token(enc, b, sp.open_start, +1, limit) - lead
                e = _char_token(enc, b, sp.close_end, -1, limit) - lead
                spans.append((a, max(a, e)))
                anchors.append(a)
            win = _window(n, budget, spans)
            body = full[lead:lead + n]
            kept, new_pos, offset = [], [], 0
            for a, e in win:
                kept.extend(body[a:e])
            for anc in anchors:
                offset = 0
                for a, e in win:
                    if a <= anc < e:
                        new_pos.append(lead + offset + anc - a)
                        break
                    offset += e - a
                else:   # cannot happen with _window's guarantees; keep CLS as a safe fallback
                    new_pos.append(0)
            truncated += len(kept) < n
            ids.append(np.asarray(full[:lead] + kept + full[len(full) - trail:], dtype=np.int64))
            pos.append(new_pos)
            labs.append(index[ex.label] if labels is not None and ex.label is not None else -1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Features(ids, np.asarray(pos, dtype=np.int64).reshape(-1, 2), np.asarray(labs, dtype=np.int64),
                    [ex.id for ex in examples], pad, truncated)


# ----------------------------------------------------------------- model


def n_outputs(settings: RESettings) -> int:
    return len(settings.labels) + (Hierarchy(settings.labels).n_families if settings.hierarchical else 0)


def build_re_model(cfg: RETrainConfig, labels: list[str]):
    """(tokenizer, model, settings) with a fresh classification head on `cfg.backbone`."""
    from odqa.modeling.checkpoint import build_model
    settings = RESettings(labels=list(labels), markers=cfg.markers, pooling=cfg.pooling,
                          hierarchical=cfg.hierarchical, max_length=cfg.max_length)
    head = HeadConfig(type=cfg.head, dropout=cfg.dropout)
    torch.manual_seed(cfg.train.seed)   # the head's initialisation follows --seed
    tokenizer, model = build_model(cfg.backbone, "classification", head, num_labels=n_outputs(settings),
                                   pooling=cfg.pooling, n_entities=2)
    extra = special_tokens(cfg.markers)
    if extra:
        tokenizer.add_special_tokens({"additional_special_tokens": extra})
        if len(tokenizer) > model.backbone.config.vocab_size:
            model.backbone.resize_token_embeddings(len(tokenizer))
    return tokenizer, model, settings


def load_re_model(folder: str | Path, labels: list[str] | None = None, device: str = "auto"):
    """(tokenizer, model on `device`, settings) from a checkpoint; refuses one trained with another label set."""
    from odqa.modeling.checkpoint import load_model
    tokenizer, model, meta = load_model(folder, "classification", device=device)
    settings = RESettings.from_extra(meta.get("extra", {}), str(folder))
    if labels is not None and list(labels) != settings.labels:
        raise ModelError(f"{folder}: the checkpoint has another label set ({_label_diff(settings.labels, list(labels))})")
    if meta.get("head_kwargs", {}).get("num_labels") != n_outputs(settings):
        raise ModelError(f"{folder}: head has {meta.get('head_kwargs', {}).get('num_labels')} outputs, "
                        f"its settings need {n_outputs(settings)}")
    return tokenizer, model, settings


@torch.no_grad()
def predict_probs(model, feats: Features, settings: RESettings, batch_size: int = 64, quiet: bool = True,
                  desc: str = "predict") -> np.ndarray:
    """(n, labels) probabilities in the features' order (batches sorted by length), on the model's device
    (autocast to bf16/fp16 on a GPU)."""
    from odqa.device import inference_autocast, model_device, to_device_batch
    from odqa.progress import bar
    device = model_device(model)
    hierarchy = Hierarchy(settings.labels) if settings.hierarchical else None
    was_training = model.training
    model.eval()
    order = np.argsort(feats.lengths(), kind="stable")
    out = np.zeros((len(feats), len(settings.labels)), dtype=np.float64)
    pbar = bar(len(feats), desc, "ex", quiet)
    try:
        with torch.inference_mode(), inference_autocast(device):
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size].tolist()
                lp = log_probs(output_logits(model, to_device_batch(feats.collate(idx), device)).float(), hierarchy)
                out[idx] = lp.double().exp().cpu().numpy()
                pbar.update(len(idx))
    finally:
        pbar.close()
        model.train(was_training)
    return out


def decode(probs: np.ndarray, settings: RESettings) -> np.ndarray:
    """Predicted label indices: the argmax, or in hierarchical mode the most probable family first,
    then the most probable label within it (as the issue asks; it favours relations over no_relation
    when a family's mass is spread over several labels)."""
    if not settings.hierarchical:
        return probs.argmax(axis=1)
    members = Hierarchy(settings.labels).members.numpy()          # (families, labels)
    family = (probs @ members.T.astype(probs.dtype)).argmax(axis=1)
    return np.where(members[family], probs, -1.0).argmax(axis=1)


def evaluate_probs(probs: np.ndarray, gold: np.ndarray, settings: RESettings) -> dict[str, float]:
    """KLUE metrics (micro-F1 on the decoded labels, AUPRC on the probabilities) plus dev cross-entropy."""
    m = re_metrics(gold, probs, decode(probs, settings))
    m["loss"] = float(-np.mean(np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, None))))
    return m


# ------------------------------------------------------------------ task


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
