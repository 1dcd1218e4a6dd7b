"""`QuerySideTask` (`--side query`): the query encoder trained alone against the base encoder's fixed passage
vectors, every window of the training pool a negative (see the package doc)."""

from __future__ import annotations

import numpy as np

from odqa.encoder_training.model import passage_base
from odqa.encoder_training.task import RetrieverTask, RetrieverTrainConfig
from odqa.types import Passage, Question


class QuerySideTask(RetrieverTask):
    """Query-side fine-tuning against the fixed passage vectors of `passage_model` (see the module doc)."""
    mines_negatives = False

    def __init__(self, tokenizer, questions: list[Question], cfg: RetrieverTrainConfig, batch_size: int,
                 seed: int = 42, prefixes: tuple[str, str] = ("", ""), extra: list[Passage] | None = None,
                 passage_model=None, progress=None):
        import torch

        from odqa.retrieval.dense import DenseEncoder
        super().__init__(tokenizer, questions, cfg, batch_size, seed, prefixes, extra)
        ids, _ = self.pool_windows()
        self.row = {}                      # (passage id, window number) -> row of `wv`
        for p in self.pool:
            for w in range(len(self.windows[p.id])):
                self.row[(p.id, w)] = len(self.row)
        enc = DenseEncoder(passage_base(cfg.backbone), cfg.max_length, model=passage_model, tokenizer=tokenizer)
        self.wv = torch.from_numpy(enc.encode_ids(ids, progress))

    def window_vectors(self, model) -> np.ndarray:
        return self.wv.cpu().numpy()

    def train_batches(self, epoch: int, seed: int):
        import torch
        for idx in self._batches(epoch, seed):
            qs = [self.train[i] for i in idx]
            target = [self.row[(q.gold_ids[0], self.positive[i])] for q, i in zip(qs, idx)]
            # the other windows of a question's gold passages are not negatives
            mask = torch.zeros(len(qs), len(self.wv), dtype=torch.bool)
            for r, q in enumerate(qs):
                for g in q.gold_ids:
                    mask[r, [self.row[(g, w)] for w in range(len(self.windows.get(g, ())))]] = True
                mask[r, target[r]] = False
            yield {"q": self._enc([self.prefixes[0] + q.question for q in qs], self.cfg.query_max_length),
                   "target": torch.tensor(target), "mask": mask}

    def loss(self, model, batch):
        import torch
        q = self._embed(model, batch["q"])
        if self.wv.device != q.device:           # the fixed passage vectors go where the query vectors are, once
            self.wv = self.wv.to(q.device)
        logits = (q @ self.wv.T / self.cfg.temperature).masked_fill(batch["mask"], float("-inf"))
        return torch.nn.functional.cross_entropy(logits, batch["target"])

    def sidecar(self) -> dict:
        return {"side": "query", "passage_encoder": passage_base(self.cfg.backbone)}
