"""Hugging Face question-answering checkpoints (`AutoModelForQuestionAnswering`) as odqa readers.

Such a model gives start/end logits per token, as odqa's span heads do, so the same windows,
n-best decoding and post-processing apply. Works with a local folder, or a hub name for users
who are online.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from odqa.errors import ModelError
from odqa.modeling.backbone import quiet_transformers
from odqa.reader.inference import WindowSettings


class StartEndLogits(torch.nn.Module):
    """An HF QA model called like odqa's span models: `model(**batch) -> (start_logits, end_logits)`."""

    def __init__(self, qa_model):
        super().__init__()
        self.qa = qa_model

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kw = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        out = self.qa(**kw)
        return out.start_logits, out.end_logits


def is_hf_qa_folder(folder: Path) -> bool:
    cfg = folder / "config.json"
    if not cfg.is_file():
        return False
    try:
        archs = json.loads(cfg.read_text(encoding="utf-8")).get("architectures") or []
    except (json.JSONDecodeError, OSError, AttributeError):
        return False
    return any(str(a).endswith("ForQuestionAnswering") for a in archs)


@quiet_transformers()
def load_hf_qa(spec: str | Path, max_length: int = 384, stride: int = 128):
    """(tokenizer, model in eval mode, window settings) of an HF QA checkpoint (folder or hub name)."""
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from odqa.modeling.pretrained import load_pretrained
    hub = not Path(spec).exists()
    try:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, spec, hub)
        model = load_pretrained(AutoModelForQuestionAnswering.from_pretrained, spec, hub)
    except OSError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{spec}: cannot load a question-answering checkpoint ({first}); offline, pass a folder "
                         f"(download it on a connected machine with `huggingface-cli download {spec}`)") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{spec}: its tokenizer has no fast version, which odqa needs for character offsets")
    limit = getattr(tokenizer, "model_max_length", max_length) or max_length
    length = min(max_length, limit if limit < 100_000 else max_length)
    window = WindowSettings(max_length=length, stride=min(stride, length // 4))
    wrapped = StartEndLogits(model)
    wrapped.eval()
    return tokenizer, wrapped, window
