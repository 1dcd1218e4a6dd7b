"""Sentence encoders: the runtime interface, the torch runtime, pooling, and the model facts indexes record.

A runtime turns a padded batch of token ids into L2-normalised mean-pooled vectors
(`EncoderRuntime`); `odqa.modeling.runtimes.make_runtime` picks torch (here) or ONNX Runtime
(`odqa.modeling.onnx_runtime`) by the `quantize` setting, so the dense retriever never needs to
know which. Model facts: the encoder fingerprint (sha256 of its weights) and the passage encoder
a query-side fine-tuned folder pairs with.

One runtime may serve several threads: it holds no per-call state and runs under
`torch.inference_mode()` (or an ONNX Runtime session, which is thread-safe).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from odqa.errors import ModelError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
RETRIEVER_FILE = "odqa_retriever.json"    # written by `odqa train retriever`
QUANTIZE = ("none", "int8", "onnx", "onnx-int8")


def encoder_fingerprint(path: str | Path) -> str:
    """sha256 of the encoder's weight file (or its hub name when it has no local folder)."""
    from odqa.modeling.backbone import file_sha256  # memoised on path, size and mtime
    folder = Path(path)
    for name in WEIGHT_FILES:
        f = folder / name
        if f.exists():
            return file_sha256(f)
    return f"hub:{path}"


def passage_encoder_spec(path: str | Path) -> str | None:
    """The passage encoder a query-side fine-tuned encoder folder pairs with (None: one shared encoder)."""
    f = Path(path) / RETRIEVER_FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text(encoding="utf-8")).get("passage_encoder")
    except (OSError, ValueError) as e:
        raise ModelError(f"{f}: unreadable ({e})") from None


def mean_pool(hidden, mask):
    import torch
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


def mean_pool_np(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`mean_pool` in numpy (the ONNX runtime's output is numpy)."""
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


class EncoderRuntime(Protocol):
    name: str          # torch | onnx
    dim: int

    def vectors(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """One padded batch (int64) -> L2-normalised mean-pooled vectors (float32)."""
        ...


def quantized_torch(model, quantize: str):
    """The model as the torch runtime runs it: as is, or with dynamic int8 Linear layers."""
    if quantize != "int8":
        return model
    import torch
    with warnings.catch_warnings():  # torch marks eager dynamic quantisation deprecated; it still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TorchRuntime:
    """A torch encoder in eval mode (fp32, or dynamic int8 with quantize='int8', which runs on the CPU) on
    `device`; on a GPU it autocasts to bf16/fp16 and returns fp32 vectors."""
    name = "torch"

    def __init__(self, model, quantize: str = "none", device=None):
        import torch
        self.device = torch.device("cpu") if quantize == "int8" or device is None else torch.device(device)
        self.model = quantized_torch(model.eval().to(self.device), quantize)
        self.dim = int(model.config.hidden_size)

    def vectors(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        import torch

        from odqa.device import inference_autocast, to_device_batch
        with torch.inference_mode(), inference_autocast(self.device):
            ids_t, mask_t = to_device_batch((torch.from_numpy(input_ids), torch.from_numpy(attention_mask)),
                                            self.device)
            hidden = self.model(input_ids=ids_t, attention_mask=mask_t).last_hidden_state
            return mean_pool(hidden.float(), mask_t).cpu().numpy()
