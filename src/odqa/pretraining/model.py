"""The masked-LM model: a backbone with its MLM head (initialised when missing) and the loss over masked
positions."""

from __future__ import annotations

import logging
from typing import Any

from odqa.errors import ModelError

log = logging.getLogger(__name__)


def _mlm_head(model):
    base = model.base_model
    heads = [m for _, m in model.named_children() if m is not base]
    return heads[0] if len(heads) == 1 else None


def load_mlm(spec: str) -> tuple[Any, Any, dict]:
    """(tokenizer, masked-LM model, head report). A missing MLM head is initialised with its output
    projection tied to the word embeddings."""
    from transformers import AutoModelForMaskedLM

    from odqa.modeling.backbone import load_backbone

    try:
        tokenizer, (model, info) = load_backbone(spec, auto_class=AutoModelForMaskedLM, output_loading_info=True)
    except (ValueError, OSError) as e:
        raise ModelError(f"backbone {spec}: cannot load a masked-LM model ({' '.join(str(e).split())[:300]})") from None
    if tokenizer.mask_token_id is None:
        raise ModelError(f"backbone {spec}: its tokenizer has no mask token")
    prefix = model.base_model_prefix + "."
    missing = sorted(info.get("missing_keys", []))
    base_missing = [k for k in missing if k.startswith(prefix) and "position_ids" not in k]
    if base_missing:
        raise ModelError(f"backbone {spec}: encoder weights missing from the checkpoint ({', '.join(base_missing[:3])})")
    head_missing = [k for k in missing if not k.startswith(prefix)]
    out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
    tied = out_emb is not None and out_emb.weight.data_ptr() == in_emb.weight.data_ptr()
    if head_missing and out_emb is not None and not tied and any(k.endswith("decoder.weight") for k in head_missing):
        out_emb.weight = in_emb.weight
        model.config.tie_word_embeddings = True
        tied = True
    report = {"head_initialised": bool(head_missing), "missing_head_weights": head_missing,
              "output_tied_to_embeddings": tied}
    if head_missing:
        log.warning("backbone %s has no MLM head (%d weights missing): initialised fresh, output projection %s",
                    spec, len(head_missing), "tied to the word embeddings" if tied else "NOT tied")
    return tokenizer, model, report


def masked_lm_loss(model, batch, reduction: str = "mean", encoder_grad: bool = True):
    """Cross-entropy over the labelled positions only (the 250k-way output is never computed elsewhere).

    `encoder_grad=False` runs the encoder without a graph: only the MLM head learns from the loss
    (the head warm-up; cheaper too, no backward pass through the encoder)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    head = None if hasattr(model, "module") else _mlm_head(model)   # DDP (accelerate launch): its forward syncs
    if head is None:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    with contextlib.nullcontext() if encoder_grad else torch.no_grad():
        hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    sel = labels != -100
    if not bool(sel.any()):
        return hidden.sum() * 0.0
    logits = head(hidden[sel])
    return F.cross_entropy(logits.float(), labels[sel], reduction=reduction)
