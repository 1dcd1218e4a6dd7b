"""What a training step changes and how: which parameters are frozen, their weight-decay groups, the learning-rate
schedule and the clipped optimizer step. The training loop (`odqa.training`) and the tasks' freeze settings use them."""

from __future__ import annotations

from typing import Callable

import torch

from odqa.errors import OdqaError


def linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 over `warmup_steps`, then linear decay to 0 at `total_steps`."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into decayed and not decayed (biases, norm weights, word embeddings: a row
    no batch used keeps its pretrained value, so a packed model stores only the rows training changed)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            no_wd = p.ndim < 2 or name.endswith("bias") or "norm" in name.lower() or "word_embeddings" in name
            (plain if no_wd else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def frozen_prefixes(freeze_embeddings: bool = True, freeze_layers: int = 0) -> list[str]:
    """What `freeze` takes for the usual choices on a BERT-shaped backbone: the word embedding
    matrix (most of a multilingual model's weights), or all embeddings and the first N layers."""
    if freeze_layers:
        return ["embeddings"] + [f"encoder.layer.{i}" for i in range(freeze_layers)]
    return ["embeddings.word_embeddings"] if freeze_embeddings else []


def default_freeze_layers(model) -> int:
    """The default freeze depth of the retriever and the reranker: embeddings and a third of the layers frozen
    (4 of e5-small's 12; the measured gain, BENCHMARKS.md)."""
    return int(getattr(model.config, "num_hidden_layers", 0)) // 3


def freeze(model: torch.nn.Module, prefixes: list[str]) -> int:
    """Freeze parameters under each dotted prefix (also below a base-model prefix such as `bert.`)."""
    frozen = 0
    for prefix in prefixes:
        hits = [p for n, p in model.named_parameters() if f".{prefix}." in f".{n}."]
        if not hits:
            raise OdqaError(f"freeze_prefixes: no parameter name matches {prefix!r}")
        for p in hits:
            p.requires_grad_(False)
        frozen += len(hits)
    return frozen


def clip_and_step(params: list[torch.Tensor], optimizer, scheduler, max_grad_norm: float,
                  clip: Callable = torch.nn.utils.clip_grad_norm_) -> float:
    """Clip gradients (if max_grad_norm > 0), step optimizer and scheduler; return the pre-clip norm.
    `clip` is the clipping function (the loop passes accelerate's, which unscales fp16 gradients first)."""
    limit = max_grad_norm if max_grad_norm > 0 else float("inf")
    norm = float(clip(params, limit))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
