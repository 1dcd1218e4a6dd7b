"""The cross-encoder: backbone + classification head with one logit per (question, passage) pair.

A pair is tokenised as the pair ("query: QUESTION", "passage: TITLE\\nTEXT"), the passage cut to fit
`max_length` tokens (the question too when it alone would fill them). The head pools the token states
(mean by default: e5 was trained with mean pooling) into one relevance logit. A checkpoint is the
shared format (`modeling.checkpoint`) with `RerankerSettings` in its `extra`; `load_reranker` refuses
a folder that is not one in one line.

`CrossEncoder.rerank(questions, hits, top)` scores every question's hits in length-sorted batches and
returns the best `top` of each, ranks renumbered, the cross-encoder's logit as the score and `rerank`
as the source (the reader's `retrieval_weight` then mixes that score as it mixes a retriever's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from odqa.errors import ModelError
from odqa.types import Hit, Passage

QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
SETTINGS_VERSION = 1


@dataclass
class RerankerSettings:
    """What a checkpoint must remember to build its pairs like training did."""
    max_length: int = 256
    pooling: str = "mean"
    version: int = SETTINGS_VERSION
    train: dict[str, Any] | None = None     # provenance only

    def to_extra(self) -> dict[str, Any]:
        return {"reranker": asdict(self)}

    @classmethod
    def from_extra(cls, extra: dict[str, Any], where: str) -> "RerankerSettings":
        d = (extra or {}).get("reranker")
        if not isinstance(d, dict):
            raise ModelError(f"{where}: not a reranker checkpoint (odqa_head.json has no reranker settings; "
                             f"train one with `odqa train reranker`)")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def passage_input(p: Passage) -> str:
    return PASSAGE_PREFIX + (f"{p.title}\n{p.text}" if p.title else p.text)


def encode_pairs(tokenizer, questions: Sequence[str], passages: Sequence[Passage], max_length: int):
    """A padded batch of (question, passage) pairs, the passage side cut first."""
    return tokenizer([QUERY_PREFIX + q for q in questions], [passage_input(p) for p in passages],
                     truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt")


def pair_logits(model, batch) -> torch.Tensor:
    """(pairs,) relevance logits."""
    kw = {"token_type_ids": batch["token_type_ids"]} if "token_type_ids" in batch else {}
    return model(batch["input_ids"], batch["attention_mask"], **kw)[:, 0]


def build_reranker(backbone: str, settings: RerankerSettings, dropout: float = 0.1, seed: int = 42):
    """(tokenizer, model) with a fresh one-logit head on `backbone`."""
    from odqa.modeling.checkpoint import build_model
    from odqa.modeling.heads import HeadConfig
    torch.manual_seed(seed)
    return build_model(backbone, "classification", HeadConfig(type="linear", dropout=dropout), num_labels=1,
                       pooling=settings.pooling)


@torch.no_grad()
def score_pairs(model, tokenizer, questions: Sequence[str], passages: Sequence[Passage], max_length: int,
                batch_size: int = 32) -> np.ndarray:
    """Logits of the pairs (questions[i], passages[i]), computed in batches of similar lengths."""
    from odqa.device import inference_autocast, model_device, to_device_batch
    device = model_device(model)
    was_training = model.training
    model.eval()
    order = np.argsort([len(q) + len(p.title) + len(p.text) for q, p in zip(questions, passages)], kind="stable")
    out = np.zeros(len(questions), dtype=np.float32)
    try:
        with torch.inference_mode(), inference_autocast(device):
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size].tolist()
                batch = encode_pairs(tokenizer, [questions[i] for i in idx], [passages[i] for i in idx], max_length)
                out[idx] = pair_logits(model, to_device_batch(dict(batch), device)).float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


class CrossEncoder:
    """A loaded reranker: `rerank(questions, hits, top)`."""

    def __init__(self, model, tokenizer, settings: RerankerSettings, folder: str = "", batch_size: int = 32):
        self.model, self.tokenizer, self.settings, self.folder = model, tokenizer, settings, folder
        self.batch_size = batch_size

    def scores(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]]) -> list[np.ndarray]:
        """The logit of each hit, per question (all pairs of the call batched together)."""
        qs = [q for q, hs in zip(questions, hits) for _ in hs]
        ps = [h.passage for hs in hits for h in hs]
        flat = score_pairs(self.model, self.tokenizer, qs, ps, self.settings.max_length, self.batch_size)
        out, at = [], 0
        for hs in hits:
            out.append(flat[at:at + len(hs)])
            at += len(hs)
        return out

    def rerank(self, questions: Sequence[str], hits: Sequence[Sequence[Hit]], top: int) -> list[list[Hit]]:
        """Each question's hits reordered by the cross-encoder, the best `top` kept (ties keep retrieval order)."""
        out = []
        for hs, sc in zip(hits, self.scores(questions, hits)):
            order = np.argsort(-sc, kind="stable")[:top]
            out.append([replace(hs[i], score=float(sc[i]), rank=r, source="rerank") for r, i in enumerate(order, 1)])
        return out


def load_reranker(folder: str | Path, device: str = "auto", batch_size: int = 32) -> CrossEncoder:
    """A `CrossEncoder` from an `odqa train reranker` folder (OUT/best); a folder that is not one: one line."""
    from odqa.modeling.checkpoint import HEAD_JSON, load_model, read_meta
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: reranker folder not found (train one with `odqa train reranker`)")
    if not (folder / HEAD_JSON).exists():
        raise ModelError(f"{folder}: not a reranker checkpoint (no {HEAD_JSON}; train one with `odqa train reranker`)")
    settings = RerankerSettings.from_extra(read_meta(folder).get("extra", {}), str(folder))
    tokenizer, model, meta = load_model(folder, "classification", device=device)
    if meta.get("head_kwargs", {}).get("num_labels") != 1:
        raise ModelError(f"{folder}: not a reranker checkpoint (its head has "
                         f"{meta.get('head_kwargs', {}).get('num_labels')} outputs, a reranker's has 1)")
    return CrossEncoder(model, tokenizer, settings, str(folder), batch_size)
