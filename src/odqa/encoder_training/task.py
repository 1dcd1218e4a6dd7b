"""The retriever's training settings (`RetrieverTrainConfig`) and `RetrieverTask`, the shared loop's task:
in-batch and BM25 hard negatives, recall@1/5 of the held-out questions, saving (see the package doc)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import Field

from odqa.config import Section
from odqa.corpus import write_jsonl
from odqa.encoder_training.data import mine_negatives
from odqa.errors import OdqaError
from odqa.retrieval.dense import RETRIEVER_FILE
from odqa.retrieval.sparse import passage_text
from odqa.training import TrainConfig
from odqa.training_data import holdout_passages, training_pool
from odqa.types import Passage, Question

HELDOUT_FILE = "heldout_questions.jsonl"   # in each saved checkpoint: the questions that chose it


def _retriever_train_defaults() -> TrainConfig:
    return TrainConfig(lr=1e-5)     # the measured gain (BENCHMARKS.md)


class RetrieverTrainConfig(Section):
    """The bi-encoder's training settings; `train` is the shared loop's (lr 1e-5 by default). `temperature`
    0 and `freeze_layers` None are decided by `encoder_training.train.retriever_defaults` (the backbone's own
    temperature, a third of its layers); a task needs them decided."""
    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    max_length: int = Field(256, ge=8)          # passage tokens
    window_stride: int = Field(128, ge=0)       # longer passages: windows this many tokens apart, as the index (0 = cut)
    query_max_length: int = Field(64, ge=8)
    temperature: float = Field(0.0, ge=0)       # softmax temperature of the loss; 0 = the backbone's own
    hard_negatives: int = Field(1, ge=0)        # BM25 negatives per question
    negative_depth: int = Field(10, ge=1)       # pick negatives among the BM25 top-N non-gold passages
    holdout: float = Field(0.1, ge=0, lt=1)     # share of training questions held out for checkpoint choice
    freeze_embeddings: bool = True
    freeze_layers: Optional[int] = Field(None, ge=0)   # also freeze all embeddings and the first N layers
    train: TrainConfig = Field(default_factory=_retriever_train_defaults)


def _tensors(ids: np.ndarray, mask: np.ndarray) -> dict:
    """A padded numpy batch as the model's keyword arguments."""
    import torch
    return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}


class RetrieverTask:
    """The training loop's task: batches, loss, evaluation, saving."""
    mines_negatives = True     # BM25 hard negatives per question (the query side scores every pool window instead)

    def __init__(self, tokenizer, questions: list[Question], cfg: RetrieverTrainConfig, batch_size: int,
                 seed: int = 42, prefixes: tuple[str, str] = ("", ""), extra: list[Passage] | None = None):
        if not cfg.temperature or cfg.freeze_layers is None:
            raise OdqaError("a retriever task needs temperature and freeze_layers decided "
                            "(retriever_defaults decides them for a backbone)")
        self.tok, self.cfg, self.batch_size, self.prefixes = tokenizer, cfg, batch_size, prefixes
        questions = [q for q in questions if q.context]
        gold = training_pool(questions)
        held = holdout_passages(gold, cfg.holdout, seed)
        known = {p.id for p in gold}
        self.pool = gold + [p for p in extra or () if p.id not in known]   # extra passages: negatives only
        self.by_id = {p.id: p for p in self.pool}
        from odqa.retrieval.dense import check_stride, windows_with_spans
        check_stride(cfg.window_stride)
        spans = windows_with_spans(tokenizer, [passage_text(p, True) for p in self.pool], prefixes[1],
                                   cfg.max_length, cfg.window_stride)
        self.windows = {p.id: w for p, w in zip(self.pool, spans)}
        self.heldout = [q for q in questions if q.gold_ids[0] in held]
        self.train = [q for q in questions if q.gold_ids[0] not in held]
        self.negatives = mine_negatives(self.train, self.pool, cfg.negative_depth, seed) if self.mines_negatives else []
        self.positive = [self.answer_window(q) for q in self.train]

    def answer_window(self, q: Question) -> int:
        """Index of the first window of q's gold passage that holds q's first answer (0 when unknown)."""
        p = self.by_id[q.gold_ids[0]]
        if not (q.answers and q.answer_starts):
            return 0
        start = q.answer_starts[0] + (len(p.title) + 1 if p.title else 0)   # in "title\ntext"
        end = start + len(q.answers[0])
        return next((w for w, (_, cs, ce) in enumerate(self.windows[p.id]) if cs <= start and end <= ce), 0)

    def num_train_batches(self) -> int:
        return len(self._batches(0, 0))

    def _batches(self, epoch: int, seed: int) -> list[list[int]]:
        """Shuffled questions cut into batches whose gold passages all differ (a question whose
        passage is already in the open batch waits for the next one)."""
        rng = random.Random(seed * 1000 + epoch)
        waiting = list(range(len(self.train)))
        rng.shuffle(waiting)
        batches = []
        while waiting:
            batch, golds, later = [], set(), []
            for i in waiting:
                g = self.train[i].gold_ids[0]
                if len(batch) < self.batch_size and g not in golds:
                    batch.append(i)
                    golds.add(g)
                else:
                    later.append(i)
            batches.append(batch)
            waiting = later
        return batches

    def _enc(self, texts: list[str], max_length: int):
        return self.tok(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")

    def _pad(self, id_lists: list[list[int]]):
        """Token id lists (windows, already within max_length) -> a padded batch."""
        from odqa.retrieval.dense import pad_ids
        return _tensors(*pad_ids(id_lists, self.tok.pad_token_id or 0))

    def train_batches(self, epoch: int, seed: int):
        import torch
        rng = random.Random(seed * 1000 + epoch + 1)
        for idx in self._batches(epoch, seed):
            qs = [self.train[i] for i in idx]
            negs = [rng.choice(self.negatives[i]) for i in idx for _ in range(self.cfg.hard_negatives)]
            ids = [q.gold_ids[0] for q in qs] + negs
            windows = ([self.windows[q.gold_ids[0]][self.positive[i]][0] for q, i in zip(qs, idx)]
                       + [rng.choice(self.windows[pid])[0] for pid in negs])
            # a column holding one of the row's gold passages (other than its own label) is not a negative
            mask = torch.tensor([[c != r and pid in q.gold_ids for c, pid in enumerate(ids)] for r, q in enumerate(qs)])
            yield {"q": self._enc([self.prefixes[0] + q.question for q in qs], self.cfg.query_max_length),
                   "p": self._pad(windows), "mask": mask}

    def _embed(self, model, enc):
        """Mean-pooled vectors of a batch, computed where the model is (the loop moved training batches there
        already; evaluation batches are moved here)."""
        from odqa.device import model_device, move_to_device
        from odqa.retrieval.dense import mean_pool
        enc = move_to_device(enc, model_device(model))
        return mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])

    def loss(self, model, batch):
        import torch
        q = self._embed(model, batch["q"])
        p = self._embed(model, batch["p"])
        logits = (q @ p.T / self.cfg.temperature).masked_fill(batch["mask"], float("-inf"))
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(q), device=q.device))

    def pool_windows(self) -> tuple[list[list[int]], np.ndarray]:
        """Every window of the pool (token ids) and the index of its passage in `pool`."""
        wins = [(n, w[0]) for n, p in enumerate(self.pool) for w in self.windows[p.id]]
        return [w for _, w in wins], np.array([n for n, _ in wins])

    def window_vectors(self, model) -> np.ndarray:
        """The pool's windows encoded by `model` (in inference mode), batched by length."""
        from odqa.retrieval.dense import encode_by_length
        def forward(ids, mask):
            return self._embed(model, _tensors(ids, mask)).float().cpu().numpy()
        return encode_by_length(self.pool_windows()[0], forward, model.config.hidden_size, self.tok.pad_token_id or 0, 32)

    def evaluate(self, model) -> dict[str, float]:
        """Recall@1/5 of the held-out questions against the whole training pool (a passage scores
        as its best window)."""
        import torch
        if not self.heldout:
            return {}
        was_training = model.training
        model.eval()
        owner = self.pool_windows()[1]
        with torch.inference_mode():
            wv = self.window_vectors(model)
            qv = np.vstack([self._embed(model, self._enc([self.prefixes[0] + q.question for q in self.heldout[s:s + 64]],
                                                          self.cfg.query_max_length)).float().cpu().numpy()
                            for s in range(0, len(self.heldout), 64)])
        model.train(was_training)
        ids = [p.id for p in self.pool]
        sim = np.full((len(qv), len(self.pool)), -np.inf, dtype=np.float32)
        np.maximum.at(sim.T, owner, (qv @ wv.T).T)          # best window per passage
        top = np.argsort(-sim, axis=1)[:, :5]
        gold = [q.gold_ids[0] for q in self.heldout]
        r1 = np.mean([ids[t[0]] == g for t, g in zip(top, gold)])
        r5 = np.mean([g in [ids[j] for j in t] for t, g in zip(top, gold)])
        return {"recall@1": float(r1), "recall@5": float(r5)}

    def save(self, model, folder: Path) -> None:
        model.config.odqa_e5_prefixes = bool(self.prefixes[0])
        model.save_pretrained(folder)
        self.tok.save_pretrained(folder)
        (folder / RETRIEVER_FILE).write_text(json.dumps(
            {**self.sidecar(), "base_backbone": self.cfg.backbone, "temperature": self.cfg.temperature,
             "max_length": self.cfg.max_length, "window_stride": self.cfg.window_stride,
             "freeze_layers": self.cfg.freeze_layers,
             "hard_negatives": self.cfg.hard_negatives, "train_questions": len(self.train),
             "heldout_questions": len(self.heldout)}, indent=2))
        write_jsonl(folder / HELDOUT_FILE, ({"id": q.id, "question": q.question, "answers": q.answers,   # to evaluate
                                             "gold_ids": q.gold_ids} for q in self.heldout))     # on a real index

    def sidecar(self) -> dict:
        return {"side": "both"}
