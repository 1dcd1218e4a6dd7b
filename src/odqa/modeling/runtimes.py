"""Which encoder runtime runs a `quantize` setting: torch (fp32, dynamic int8) or ONNX Runtime (fp32, int8)."""

from __future__ import annotations

from pathlib import Path

from odqa.errors import ModelError
from odqa.modeling.encoders import QUANTIZE, EncoderRuntime, TorchRuntime


def make_runtime(spec: str, path: str | Path, quantize: str = "none", threads: int = 0, model=None,
                 device=None) -> EncoderRuntime:
    """The runtime for `quantize`: none / int8 (torch, `model` or the backbone at `spec`) or onnx / onnx-int8.
    `device` (a torch.device; None = the CPU) places the torch fp32 runtime; int8 and ONNX run on the CPU."""
    if quantize not in QUANTIZE:
        raise ModelError(f"unknown quantize '{quantize}' (choose from {', '.join(QUANTIZE)})")
    if quantize.startswith("onnx"):
        if model is not None:
            raise ModelError("the onnx runtimes export the encoder from its folder; do not pass model=")
        from odqa.modeling.onnx_runtime import OnnxRuntime
        return OnnxRuntime(spec, path, quantize, threads)
    if model is None:
        from odqa.modeling.backbone import load_backbone
        model = load_backbone(spec)[1]
    return TorchRuntime(model, quantize, device)
