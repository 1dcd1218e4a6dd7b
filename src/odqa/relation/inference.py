"""Relation inference: label probabilities of featurised examples, their decoding (flat or hierarchical:
the most probable label within the most probable family) and KLUE's metrics on them."""

from __future__ import annotations

import numpy as np
import torch

from odqa.relation.features import Features
from odqa.relation.metrics import re_metrics
from odqa.relation.model import Hierarchy, RESettings, log_probs, output_logits


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
