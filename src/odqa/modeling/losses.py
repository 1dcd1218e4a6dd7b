"""Classification losses, swappable by name: cross-entropy, focal, label smoothing.

Every loss takes `logits` (batch, classes) and integer `target` (batch,) and returns
the mean over the batch. Log-probabilities are accepted as logits too (log_softmax
leaves normalised log-probabilities unchanged), so a model that composes its own
probabilities (e.g. hierarchical classification) can use any of them.

- ``ce``: cross-entropy, optional per-class `weight` (as torch: weighted mean).
- ``focal``: Lin et al. 2017, ``-(1 - p_t)^gamma * log p_t``, optional per-class
  `weight` (alpha); gamma = 0 is exactly ``ce``.
- ``label_smoothing``: cross-entropy against ``(1 - eps) * onehot + eps / classes``
  (torch's ``label_smoothing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from odqa.errors import OdqaError

LOSSES = ("ce", "focal", "label_smoothing")


def _weighted_mean(per_example: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return per_example.mean()
    w = weight.to(per_example.device, per_example.dtype)[target]
    return (per_example * w).sum() / w.sum()


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    return _weighted_mean(nll, target, weight)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    if gamma < 0:
        raise OdqaError(f"focal loss gamma must be >= 0, got {gamma}")
    logp_t = F.log_softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)
    p_t = logp_t.exp()
    per = -((1.0 - p_t).clamp(min=0.0) ** gamma) * logp_t if gamma else -logp_t
    return _weighted_mean(per, target, weight)


def label_smoothing_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    if not 0.0 <= smoothing < 1.0:
        raise OdqaError(f"label smoothing must be in [0, 1), got {smoothing}")
    logp = F.log_softmax(logits, dim=-1)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    uniform = -logp.mean(dim=-1)
    return ((1.0 - smoothing) * nll + smoothing * uniform).mean()


@dataclass
class LossConfig:
    name: str = "ce"            # ce | focal | label_smoothing
    gamma: float = 2.0          # focal
    smoothing: float = 0.1      # label_smoothing

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise OdqaError(f"loss {self.name!r} unknown: choose one of {', '.join(LOSSES)}")


def make_loss(cfg: LossConfig, weight: torch.Tensor | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`loss(logits, target)` for the configured loss (class `weight` for ce and focal only)."""
    if cfg.name == "ce":
        return lambda logits, target: cross_entropy(logits, target, weight)
    if cfg.name == "focal":
        return lambda logits, target: focal_loss(logits, target, cfg.gamma, weight)
    if weight is not None:
        raise OdqaError("class weights are not supported with label_smoothing")
    return lambda logits, target: label_smoothing_loss(logits, target, cfg.smoothing)


def shared_span_loss(logits: torch.Tensor, target: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Span cross-entropy with shared normalisation (Clark & Gardner 2018): the softmax is taken over every
    position of every window of one group (one question: its passage's windows and its negatives' windows),
    and the target is the gold position in the window(s) that hold the answer (their probabilities summed
    when several overlapping windows hold it). `logits` (windows, positions), `target` (windows,) with 0 for a
    window without the answer, `group` (windows,) the group of each window; every group needs at least one
    window with target > 0. Mean over groups. With one window per group it is exactly cross-entropy."""
    losses = []
    for g in torch.unique(group):
        rows = (group == g).nonzero(as_tuple=True)[0]
        lg, tg = logits[rows], target[rows]
        pos = (tg > 0).nonzero(as_tuple=True)[0]
        if len(pos) == 0:
            raise OdqaError("shared normalisation: a question has no window holding its answer")
        gold = lg[pos, tg[pos]]
        losses.append(torch.logsumexp(lg.reshape(-1), 0) - torch.logsumexp(gold, 0))
    return torch.stack(losses).mean()


def distillation_loss(student: torch.Tensor, teacher_log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) over positions, the student's logits softened by `temperature` and the product
    scaled by its square (Hinton et al. 2015) so that its gradients keep their size across temperatures.
    `teacher_log_probs` (rows, positions) are already softened; a padded position holds a very negative value."""
    log_s = torch.log_softmax(student / temperature, dim=-1).clamp(min=-1e4)
    p_t = teacher_log_probs.exp()
    return (p_t * (teacher_log_probs.clamp(min=-1e4) - log_s)).sum(dim=-1).mean() * temperature ** 2
