"""Training the cross-encoder (`odqa train reranker`) on the shared loop.

Each question brings its gold passage and `negatives` hard negatives, drawn anew each epoch (a pure
function of epoch and seed, so a resumed run replays the same batches) from the retriever's top
`negative_depth` passages of the pool that are neither gold nor hold one of the question's answers
(a passage that holds the answer may well answer it). The loss is listwise: cross-entropy of the
softmax over the 1 + M logits against the gold one.

The questions of whole articles (about `holdout` of the gold passages, `training_data.
holdout_passages`) are held out. Each evaluation reranks the retriever's top `eval_candidates` of up
to `eval_questions` of them (the gold passage added last when the retriever missed it) and reports
recall@1/@3 of that order, beside the retriever's own (`retrieval_recall@1`), which picks the best
checkpoint by `recall@1`.

Mining is the caller's (`reranker.train`: BM25 over the pool, or an index's hybrid
retriever): this module gets, per question, the retrieved passages in order.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Optional, Sequence

import torch
from pydantic import Field

from odqa.config import Section
from odqa.modeling.losses import cross_entropy
from odqa.reranker.model import RerankerSettings, encode_pairs, pair_logits, score_pairs
from odqa.training import TrainConfig
from odqa.types import Passage, Question

_WS = re.compile(r"\s+")
HELDOUT_FILE = "heldout_questions.jsonl"   # in each saved checkpoint: the held-out questions (never trained on)


def _reranker_train_defaults() -> TrainConfig:
    return TrainConfig(lr=3e-5, batch_size=4, eval_every=100)


class RerankerTrainConfig(Section):
    """The cross-encoder's settings; `train` is the shared loop's (batch_size counts questions, each with
    1 + negatives pairs)."""
    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    max_length: int = Field(256, ge=16)          # tokens per (question, passage) pair
    pooling: str = Field("mean", pattern="^(cls|mean)$")
    dropout: float = Field(0.1, ge=0, lt=1)
    negatives: int = Field(3, ge=1)              # hard negatives per question per step
    negative_depth: int = Field(20, ge=1)        # drawn from the retriever's top-N non-gold, answer-free passages
    holdout: float = Field(0.05, ge=0, lt=1)     # share of gold passages (whole articles) held out
    eval_questions: int = Field(100, ge=1)       # held-out questions reranked per evaluation
    eval_candidates: int = Field(10, ge=2)       # the retriever's top-N of each, reranked
    freeze_embeddings: bool = True
    freeze_layers: Optional[int] = Field(None, ge=0)   # also freeze all embeddings and the first N layers (None: a third)
    train: TrainConfig = Field(default_factory=_reranker_train_defaults)


def _squash(s: str) -> str:
    return _WS.sub("", s)


def is_negative(q: Question, p: Passage) -> bool:
    """Neither q's gold passage (by id or text) nor a passage holding one of q's answers."""
    text = _squash(p.text)
    return (p.id not in q.gold_ids and text != _squash(q.context)
            and not any(_squash(a) in text for a in q.answers if a.strip()))


def hard_negatives(q: Question, retrieved: Sequence[Passage], depth: int) -> list[Passage]:
    """The first `depth` retrieved passages that are negatives for q (`is_negative`)."""
    return [p for p in retrieved if is_negative(q, p)][:depth]


class RerankerTask:
    """The training loop's task: listwise batches, loss, held-out recall, saving."""

    def __init__(self, tokenizer, settings: RerankerSettings, cfg: RerankerTrainConfig, train: list[Question],
                 heldout: list[Question], retrieved: dict[str, list[Passage]], pool: list[Passage],
                 gold: dict[str, Passage]):
        """retrieved: question id -> the retriever's passages for it, best first; gold: passage id -> passage."""
        self.tok, self.settings, self.cfg = tokenizer, settings, cfg
        self.pool, self.gold = pool, gold
        self.train = [q for q in train if q.gold_ids and q.gold_ids[0] in gold]
        self.negs = [hard_negatives(q, retrieved.get(q.id, []), cfg.negative_depth) for q in self.train]
        self.no_negatives = sum(1 for n in self.negs if not n)
        self.heldout = heldout
        self.eval_set = []
        for q in heldout[:cfg.eval_questions]:
            cands = list(retrieved.get(q.id, []))[:cfg.eval_candidates]
            if q.gold_ids[0] not in {p.id for p in cands}:
                cands = cands[:cfg.eval_candidates - 1] + [gold[q.gold_ids[0]]]
            self.eval_set.append((q, cands))

    def num_train_batches(self) -> int:
        return -(-len(self.train) // self.cfg.train.batch_size)

    def _negatives(self, i: int, rng: random.Random) -> list[Passage]:
        m, cand = self.cfg.negatives, self.negs[i]
        picked = rng.sample(cand, m) if len(cand) >= m else list(cand)
        q = self.train[i]
        for _ in range(100 * m):          # too few mined: random pool passages that are negatives fill in
            if len(picked) >= m:
                break
            p = rng.choice(self.pool)
            if is_negative(q, p):
                picked.append(p)
        while len(picked) < m:            # a pool of nothing but q's answers: repeat what there is
            picked.append(picked[-1] if picked else rng.choice(self.pool))
        return picked

    def train_batches(self, epoch: int, seed: int):
        rng = random.Random(seed * 1000 + epoch)
        order = list(range(len(self.train)))
        rng.shuffle(order)
        bs = self.cfg.train.batch_size
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            qs, ps = [], []
            for i in idx:
                q = self.train[i]
                group = [self.gold[q.gold_ids[0]]] + self._negatives(i, rng)
                qs += [q.question] * len(group)
                ps += group
            yield dict(encode_pairs(self.tok, qs, ps, self.settings.max_length))

    def loss(self, model, batch) -> torch.Tensor:
        logits = pair_logits(model, batch).float().view(-1, 1 + self.cfg.negatives)
        return cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))

    def evaluate(self, model) -> dict[str, float]:
        if not self.eval_set:
            return {}
        qs = [q.question for q, c in self.eval_set for _ in c]
        ps = [p for _, c in self.eval_set for p in c]
        flat = score_pairs(model, self.tok, qs, ps, self.settings.max_length)
        r1 = r3 = base = 0
        at = 0
        for q, c in self.eval_set:
            sc = flat[at:at + len(c)]
            at += len(c)
            order = sorted(range(len(c)), key=lambda j: -sc[j])
            gold = set(q.gold_ids)
            r1 += c[order[0]].id in gold
            r3 += any(c[j].id in gold for j in order[:3])
            base += c[0].id in gold
        n = len(self.eval_set)
        return {"recall@1": r1 / n, "recall@3": r3 / n, "retrieval_recall@1": base / n}

    def save(self, model, folder: Path) -> None:
        from odqa.corpus import write_jsonl
        from odqa.modeling.checkpoint import save_model
        save_model(model, self.tok, folder, extra=self.settings.to_extra())
        # the held-out questions, to choose --rerank N on questions the reranker never saw
        write_jsonl(folder / HELDOUT_FILE, ({"id": q.id, "question": q.question, "answers": q.answers,
                                             "gold_ids": q.gold_ids} for q in self.heldout))
