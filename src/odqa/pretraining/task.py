"""Masked-LM pretraining as a task of the shared training loop: `PretrainTask` (dynamic masks per epoch,
fixed masks on the held-out chunks)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterator

import numpy as np
from odqa.pretraining.config import PretrainConfig
from odqa.pretraining.features import Chunk
from odqa.pretraining.masking import mask_tokens
from odqa.pretraining.model import masked_lm_loss
from odqa.pretraining.publish import MANIFEST


class PretrainTask:
    """The training loop's task for masked-LM pretraining."""

    def __init__(self, tokenizer, chunks: list[Chunk], cfg: PretrainConfig, batch_size: int, seed: int = 42,
                 base_e5_prefixes: bool = False, manifest: dict | None = None):
        self.tok, self.cfg, self.batch_size, self.seed = tokenizer, cfg, batch_size, seed
        self.e5 = base_e5_prefixes
        self.manifest = manifest or {}
        self.step = 0
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.mask_id = tokenizer.mask_token_id
        self.vocab = len(tokenizer)
        self.special_ids = list(tokenizer.all_special_ids)
        order = np.random.default_rng(seed).permutation(len(chunks))
        n_hold = int(len(chunks) * cfg.holdout)
        if cfg.holdout > 0 and n_hold == 0 and len(chunks) >= 2:
            n_hold = 1
        n_hold = min(n_hold, cfg.max_eval_chunks)
        self.heldout = [chunks[i] for i in sorted(order[:n_hold])]
        self.train = [chunks[i] for i in sorted(order[n_hold:])]
        self._eval_batches = [self._collate(self.heldout[s:s + batch_size], [seed, 10**6, s])
                              for s in range(0, len(self.heldout), batch_size)]

    def _mask(self, chunk: Chunk, seed) -> tuple[np.ndarray, np.ndarray]:
        c = self.cfg
        return mask_tokens(chunk.ids, chunk.special, mask_id=self.mask_id, vocab_size=self.vocab, seed=seed,
                           objective=c.objective, units=chunk.units, ratio=c.mask_ratio, span_p=c.span_p,
                           max_span=c.max_span, special_ids=self.special_ids)

    def _collate(self, chunks: list[Chunk], seed: list[int]) -> dict:
        import torch
        width = max(len(c.ids) for c in chunks)
        ids = np.full((len(chunks), width), self.pad_id, dtype=np.int64)
        labels = np.full((len(chunks), width), -100, dtype=np.int64)
        att = np.zeros((len(chunks), width), dtype=np.int64)
        for r, c in enumerate(chunks):
            x, y = self._mask(c, np.random.default_rng([*seed, r]))
            ids[r, :len(x)], labels[r, :len(y)], att[r, :len(x)] = x, y, 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(att),
                "labels": torch.from_numpy(labels)}

    def num_train_batches(self) -> int:
        return (len(self.train) + self.batch_size - 1) // self.batch_size

    def train_batches(self, epoch: int, seed: int) -> Iterator[dict]:
        order = np.random.default_rng([seed, epoch]).permutation(len(self.train))
        for b, s in enumerate(range(0, len(order), self.batch_size)):
            yield self._collate([self.train[i] for i in order[s:s + self.batch_size]], [seed, epoch, b])

    def set_step(self, step: int) -> None:
        self.step = step

    def loss(self, model, batch):
        """During the first `head_warmup_steps` steps the encoder is not trained: a freshly initialised
        MLM head would otherwise send random gradients into it (e5 ships without one)."""
        return masked_lm_loss(model, batch, encoder_grad=self.step >= self.cfg.head_warmup_steps)

    def evaluate(self, model) -> dict[str, float]:
        """Masked-LM loss (mean over masked tokens) on the held-out chunks, fixed masks."""
        import torch
        if not self._eval_batches:
            return {}
        was = model.training
        model.eval()
        from odqa.device import model_device, to_device_batch
        total, count, device = 0.0, 0, model_device(model)
        with torch.inference_mode():
            for batch in self._eval_batches:
                n = int((batch["labels"] != -100).sum())
                if n:
                    total += float(masked_lm_loss(model, to_device_batch(batch, device), reduction="sum"))
                    count += n
        model.train(was)
        if not count:
            return {}
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    def save(self, model, folder: Path) -> None:
        model.config.odqa_e5_prefixes = self.e5
        model.save_pretrained(folder)
        self.tok.save_pretrained(folder)
        (folder / MANIFEST).write_text(json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
