"""Backbone + head as one module, saved as an HF backbone folder plus the head.

A checkpoint folder holds the backbone (`config.json`, weights) and tokenizer in HF
format, `odqa_head.safetensors` and `odqa_head.json` (task kind, head config, label
list or other task settings, base backbone, tokenizer fingerprint), and `odqa_checksums.json`
(every file's size and checksum, written last, checked at load). Loading reads
everything from the folder: no flags needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from odqa.version import __version__
from odqa.checksums import write_checksums
from odqa.device import cpu_state, resolve_device
from odqa.errors import ModelError
from odqa.modeling.backbone import quiet_transformers
from odqa.modeling.checkpoint_files import (HEAD_JSON, HEAD_WEIGHTS, open_checkpoint, read_meta,  # noqa: F401 (re-exported)
                                            tokenizer_fingerprint)
from odqa.modeling.heads import ClassificationHead, HeadConfig, SpanHead


class BackboneWithHead(nn.Module):
    """`forward(**encoded, **head_kwargs)` runs the backbone and hands token states to the head."""

    def __init__(self, backbone: nn.Module, head: nn.Module, kind: str, meta: dict[str, Any]):
        super().__init__()
        self.backbone, self.head, self.kind, self.meta = backbone, head, kind, meta

    @property
    def config(self):
        return self.backbone.config

    def forward(self, input_ids, attention_mask, token_type_ids=None, em_ids=None, **head_kwargs):
        """`em_ids` (the EM-token feature, 0/1 per token) is added through the head's embedding when it has one."""
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        em = getattr(self.head, "em", None)
        if em is not None:
            if em_ids is None:
                em_ids = torch.zeros_like(input_ids)
            kw = {"inputs_embeds": self.backbone.get_input_embeddings()(input_ids) + em(em_ids),
                  "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        states = self.backbone(**kw).last_hidden_state
        return self.head(states, attention_mask, **head_kwargs)


def make_head(kind: str, hidden: int, cfg: HeadConfig, **kw) -> nn.Module:
    if kind == "span":
        return SpanHead(hidden, cfg)
    if kind == "classification":
        return ClassificationHead(hidden, kw["num_labels"], cfg, kw.get("pooling", "cls"), kw.get("n_entities", 2))
    raise ModelError(f"unknown head kind {kind!r}")


def build_model(backbone_spec: str, kind: str, cfg: HeadConfig, **head_kw) -> tuple[Any, BackboneWithHead]:
    """(tokenizer, model) with a freshly initialised head on the backbone `backbone_spec`."""
    from odqa.modeling.backbone import load_backbone
    tokenizer, backbone = load_backbone(backbone_spec)
    head = make_head(kind, backbone.config.hidden_size, cfg, **head_kw)
    meta = {"kind": kind, "head": cfg.to_dict(), "head_kwargs": head_kw, "base_backbone": backbone_spec}
    return tokenizer, BackboneWithHead(backbone, head, kind, meta)


@quiet_transformers()
def save_model(model: BackboneWithHead, tokenizer, folder: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the checkpoint into `folder` (the caller makes it atomic, e.g. the training loop)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.backbone.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in cpu_state(model.head.state_dict()).items()}, str(folder / HEAD_WEIGHTS))
    meta = dict(model.meta, extra=extra or {}, tokenizer=tokenizer_fingerprint(tokenizer), odqa_version=__version__)
    (folder / HEAD_JSON).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    write_checksums(folder)            # last: the size and checksum of every file, checked at load


@quiet_transformers()
def load_model(folder: str | Path, kind: str, device: str | torch.device = "auto") -> tuple[Any, BackboneWithHead, dict[str, Any]]:
    """(tokenizer, model in eval mode on `device` (a torch.device as the caller resolved it, or a name),
    meta) from a checkpoint folder; refuses a mismatched one. Weights are read onto the CPU whatever device
    wrote them, then moved."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel
    from odqa.modeling.backbone import POOLER_TYPES
    folder = Path(folder)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    tokenizer, meta = open_checkpoint(folder, kind)
    kw = {"add_pooling_layer": False} if AutoConfig.from_pretrained(str(folder)).model_type in POOLER_TYPES else {}
    backbone = AutoModel.from_pretrained(str(folder), **kw)
    head = make_head(kind, backbone.config.hidden_size, HeadConfig.from_dict(meta["head"]), **meta.get("head_kwargs", {}))
    state = load_file(str(folder / HEAD_WEIGHTS))
    missing, unexpected = head.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{folder}: head weights do not match its config (missing {list(missing)[:3]}, "
                        f"unexpected {list(unexpected)[:3]})")
    model = BackboneWithHead(backbone, head, kind, {k: v for k, v in meta.items() if k not in ("extra",)})
    model.eval()
    return tokenizer, model.to(target), meta
