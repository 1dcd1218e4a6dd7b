"""Reader training as a task of the shared training loop (`odqa train reader`).

Windows of the training questions are batched by similar length (shuffled within
large chunks, so batches carry little padding and order stays random); the loss is
the mean of start and end cross-entropy. Evaluation decodes a fixed subset of the
dev questions against their own passage (closed domain) and reports EM/F1.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch
from pydantic import Field, model_validator

from odqa.config import Section
from odqa.metrics import em_f1
from odqa.modeling.checkpoint import save_model
from odqa.modeling.heads import HeadConfig
from odqa.modeling.losses import distillation_loss, shared_span_loss
from odqa.reader.em_feature import em_spans
from odqa.reader.features import SkipReport, make_windows, training_examples
from odqa.text.normalize import normalize
from odqa.reader.inference import WindowSettings, collate, predict_spans
from odqa.reader.postprocess import default_postprocessor
from odqa.optimization import frozen_prefixes
from odqa.training import TrainConfig
from odqa.types import Passage, Question


def _reader_train_defaults() -> TrainConfig:
    return TrainConfig(lr=1e-4)


class ReaderConfig(Section):
    """What a reader is trained as and on: backbone, head, windows, freezing, sampling; `train` is the shared
    loop's settings (lr 1e-4 by default)."""
    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    head: HeadConfig = Field(default_factory=HeadConfig)
    window: WindowSettings = Field(default_factory=WindowSettings)
    freeze_embeddings: bool = True
    freeze_layers: int = Field(0, ge=0)           # also freeze the embeddings and the first N transformer layers
    layers: Optional[int] = Field(None, ge=1)     # keep this many of the backbone's layers (`odqa.modeling.layers`)
    negative_ratio: float = Field(1.0, ge=0, le=1)   # share of no-answer windows trained on each epoch (resampled)
    negative_passages: int = Field(0, ge=0)       # mined passages per question trained as no-answer (needs a pool)
    mining: Literal["sparse", "hybrid"] = "sparse"   # the retriever that mines them over the pool
    normalisation: Literal["window", "shared"] = "window"   # span softmax per window, or over all windows of a question
    max_question_windows: int = Field(8, ge=1)    # shared: windows per question in a batch (answer windows first)
    distill_weight: float = Field(0.5, ge=0, le=1)   # with teachers: share of the loss that follows their soft spans
    distill_temperature: float = Field(2.0, gt=0)    # with teachers: softening of teacher and student distributions
    eval_limit: int = Field(300, ge=0)            # dev questions decoded at each evaluation (0 = all)
    eval_batch_size: int = Field(32, ge=1)
    train: TrainConfig = Field(default_factory=_reader_train_defaults)

    @model_validator(mode="after")
    def _window_fits(self):
        w = self.window
        if w.max_length < 8 or w.stride < 0 or w.stride >= w.max_length:
            raise ValueError(f"windows need max_length >= 8 and 0 <= stride < max_length, got max_length "
                             f"{w.max_length}, stride {w.stride}")
        return self


def length_batches(lengths: list[int], batch_size: int, rng: random.Random, chunk: int = 50) -> list[list[int]]:
    """Random batches of similar length: shuffle, sort within chunks of `chunk` batches, shuffle batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    span = batch_size * chunk
    for c in range(0, len(order), span):
        part = sorted(order[c:c + span], key=lambda i: lengths[i])
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def closed_domain_inputs(questions: list[Question]) -> tuple[list[str], list[list[Passage]]]:
    return ([q.question for q in questions],
            [[Passage(q.gold_ids[0] if q.gold_ids else q.id, "", q.context)] for q in questions])


class ReaderTask:
    def __init__(self, tokenizer, train: list[Question], dev: list[Question], cfg: ReaderConfig,
                 batch_size: int | None = None, seed: int | None = None, train_files: list[str] | None = None,
                 negatives: Sequence[Sequence[Passage]] | None = None, targets=None):
        """`negatives[i]`: the mined no-answer passages of `train[i]` (multi-passage training); `targets`, set
        with `set_targets` once the windows exist: the teachers' per-window log-probabilities (distillation)."""
        batch_size = cfg.train.batch_size if batch_size is None else batch_size
        seed = cfg.train.seed if seed is None else seed
        self.tok, self.cfg, self.batch_size, self.seed = tokenizer, cfg, batch_size, seed
        self.skips = SkipReport()
        kept: list[int] = []
        qs, ctxs, ans = training_examples(train, self.skips, kept)
        owner = list(range(len(qs)))                 # pair -> question (position among the kept ones)
        mined = [False] * len(qs)
        if negatives is not None:
            for j, i in enumerate(kept):
                for p in negatives[i]:
                    qs.append(qs[j])
                    ctxs.append(normalize(p.text))
                    ans.append(None)
                    owner.append(j)
                    mined.append(True)
        self.n_train_questions = len(kept)
        self.n_negative_passages = len(owner) - len(kept)
        w = cfg.window
        em = em_spans(qs, ctxs) if cfg.head.em_feature else None
        self.win = make_windows(tokenizer, qs, ctxs, w.max_length, w.stride, w.max_query_length, ans, em)
        self.question_of = [owner[e] for e in self.win.example]      # window -> question
        self.mined = [mined[e] for e in self.win.example]            # window of a mined passage
        self.lengths = [len(x) for x in self.win.input_ids]
        self.groups: list[list[int]] = [[] for _ in kept]
        for i, j in enumerate(self.question_of):
            self.groups[j].append(i)
        self.unanswerable = sum(1 for g in self.groups if not any(self.win.start[i] > 0 for i in g))
        dev = [q for q in dev if q.context and q.answers]
        rng = random.Random(seed)
        if cfg.eval_limit and len(dev) > cfg.eval_limit:
            dev = rng.sample(dev, cfg.eval_limit)
        self.dev = dev
        self.train_files = train_files or []
        self.targets = targets

    def set_targets(self, targets) -> None:
        """The teachers' (2, tokens) log-probabilities of every window (`odqa.reader.distill`)."""
        if len(targets) != len(self.win):
            raise ValueError(f"distillation targets for {len(targets)} windows, the task has {len(self.win)}")
        self.targets = targets

    def _epoch_windows(self, rng: random.Random) -> list[int]:
        """Every answer window, a `negative_ratio` share of the gold passages' no-answer windows and every window
        of the mined negative passages."""
        pos = [i for i in range(len(self.win)) if self.win.start[i] > 0]
        neg = [i for i in range(len(self.win)) if self.win.start[i] == 0 and not self.mined[i]]
        if self.cfg.negative_ratio < 1.0:
            neg = rng.sample(neg, round(len(neg) * self.cfg.negative_ratio))
        return sorted(pos + neg + [i for i in range(len(self.win)) if self.mined[i]])

    def _question_windows(self, group: list[int], rng: random.Random) -> list[int]:
        """A question's windows for one epoch: its answer windows first, then others drawn up to the cap."""
        cap = self.cfg.max_question_windows
        pos = [i for i in group if self.win.start[i] > 0][:cap]
        rest = [i for i in group if self.win.start[i] == 0]
        return pos + rng.sample(rest, min(len(rest), cap - len(pos)))

    def question_batches(self, rng: random.Random) -> list[list[int]]:
        """Shared normalisation: batches of whole questions (at most `batch_size` windows unless one question
        alone has more), questions without an answer window left out."""
        order = [j for j, g in enumerate(self.groups) if any(self.win.start[i] > 0 for i in g)]
        rng.shuffle(order)
        batches, cur = [], []
        for j in order:
            ws = self._question_windows(self.groups[j], rng)
            if cur and len(cur) + len(ws) > self.batch_size:
                batches.append(cur)
                cur = []
            cur = cur + ws
        if cur:
            batches.append(cur)
        return batches

    def _batches(self, rng: random.Random) -> list[list[int]]:
        if self.cfg.normalisation == "shared":
            return self.question_batches(rng)
        keep = self._epoch_windows(rng)
        return [[keep[j] for j in chosen] for chosen in
                length_batches([self.lengths[i] for i in keep], self.batch_size, rng)]

    def num_train_batches(self) -> int:
        return len(self._batches(random.Random(0)))

    def train_batches(self, epoch: int, seed: int):
        rng = random.Random(seed * 1000 + epoch)
        for idx in self._batches(rng):
            types = [self.win.token_type_ids[i] for i in idx] if self.win.token_type_ids is not None else None
            ems = [self.win.em_ids[i] for i in idx] if self.win.em_ids is not None else None
            batch = collate(self.tok, [self.win.input_ids[i] for i in idx], types, ems)
            batch["start"] = torch.tensor([self.win.start[i] for i in idx])
            batch["end"] = torch.tensor([self.win.end[i] for i in idx])
            if self.cfg.normalisation == "shared":
                batch["group"] = torch.tensor([self.question_of[i] for i in idx])
            if self.targets is not None:
                t = torch.full((len(idx), 2, batch["input_ids"].shape[1]), -1e4)
                for row, i in enumerate(idx):
                    t[row, :, :self.targets[i].shape[1]] = torch.from_numpy(self.targets[i].astype("float32"))
                batch["teacher"] = t
            yield batch

    def loss(self, model, batch):
        inputs = {k: v for k, v in batch.items() if k not in ("start", "end", "group", "teacher")}
        start, end = model(**inputs)
        if "group" in batch:
            g = batch["group"]
            hard = (shared_span_loss(start, batch["start"], g) + shared_span_loss(end, batch["end"], g)) / 2
        else:
            ce = torch.nn.functional.cross_entropy
            hard = (ce(start, batch["start"]) + ce(end, batch["end"])) / 2
        if "teacher" not in batch:
            return hard
        t, temp, w = batch["teacher"], self.cfg.distill_temperature, self.cfg.distill_weight
        soft = (distillation_loss(start, t[:, 0], temp) + distillation_loss(end, t[:, 1], temp)) / 2
        return (1 - w) * hard + w * soft

    def evaluate(self, model) -> dict[str, float]:
        if not self.dev:
            return {}
        questions, passages = closed_domain_inputs(self.dev)
        raw = predict_spans(model, self.tok, questions, passages, self.cfg.window, self.cfg.eval_batch_size)
        post = default_postprocessor(1)
        preds = {}
        for q, spans, ps in zip(self.dev, raw, passages):
            best = post(spans, {p.id: p.text for p in ps})
            preds[q.id] = best[0].text if best else ""
        m = em_f1(preds, {q.id: q.answers for q in self.dev})
        return {"em": m["em"], "f1": m["f1"]}

    def freeze_prefixes(self) -> list[str]:
        return frozen_prefixes(self.cfg.freeze_embeddings, self.cfg.freeze_layers)

    def settings(self) -> dict:
        return {"window": asdict(self.cfg.window), "train_files": self.train_files,
                "negative_ratio": self.cfg.negative_ratio, "freeze_layers": self.cfg.freeze_layers,
                "negative_passages": self.cfg.negative_passages, "mined_passages": self.n_negative_passages,
                "normalisation": self.cfg.normalisation, "max_question_windows": self.cfg.max_question_windows,
                "unanswerable_questions": self.unanswerable,
                "distilled": self.targets is not None,
                "train_questions": self.n_train_questions, "train_windows": len(self.win),
                "skipped_records": self.skips.skipped, "backbone": self.cfg.backbone}

    def save(self, model, folder: Path) -> None:
        save_model(model, self.tok, folder, extra={"reader": self.settings()})
