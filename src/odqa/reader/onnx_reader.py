"""ONNX Runtime backend of the reader (`runtime: onnx | onnx-int8`), like the dense encoder's.

The span model (backbone + span head, the CNN body included) is exported once with torch's TorchScript
exporter and checked against torch. The word-embedding matrix (most of a multilingual model's weights:
250k rows of a 118M-parameter e5-small) stays outside the graph, as `embeddings.npy` beside it, memory-mapped
and gathered row by row for each batch; the graph takes the gathered rows (inputs_embeds, attention_mask
[, token_type_ids] -> start_logits, end_logits, dynamic batch and sequence axes) and adds the position and
token-type embeddings itself. The lookup is exact, so answers are those of the whole model, and a session
opens in a fraction of the time (the graph is a fifth of the size). Both are cached under
``<odqa cache>/onnx/reader-<checkpoint key[:16]>-opset<N>-<fp32|int8>-r<recipe>/`` with the
encoder export's sidecar and checks (`odqa.modeling.onnx_runtime.cached_export`): the key hashes
the checkpoint's weights, head and config, so a retrained reader is exported again. int8 is the
encoder's recipe (dynamic int8 of the weight MatMuls; the CNN head's convolutions stay fp32).
A cached model is loaded without loading the torch weights at all.
"""

from __future__ import annotations

import json

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from odqa.checksums import file_digest
from odqa.errors import ModelError, OdqaError
from odqa.modeling.checkpoint_files import HEAD_JSON, HEAD_WEIGHTS
from odqa.modeling.onnx_runtime import (KINDS, OPSET, cache_folder, cached_export, quantize_int8, require_onnxruntime,
                                        session)

RUNTIMES = ("torch", "onnx", "onnx-int8")
RECIPE = 2                    # bump when the export or quantisation recipe changes: old cache entries are not reused
PREFIX = "reader-"
EMBEDDINGS = "embeddings.npy"     # the word-embedding rows the graph's inputs_embeds are gathered from
_IDENTITY_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", HEAD_WEIGHTS, HEAD_JSON)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise OdqaError(f"unknown reader runtime '{runtime}' (choose from {', '.join(RUNTIMES)})")
    return runtime


def reader_fingerprint(folder: Path) -> str:
    """sha256 over the checksums of the files that make the span model (weights, head, config)."""
    h = hashlib.sha256()
    for name in _IDENTITY_FILES:
        f = folder / name
        if f.is_file():
            h.update(f"{name}\t{file_digest(f)}\n".encode())
    return h.hexdigest()


def _meta(key: str, kind: str) -> dict:
    return {"reader_sha256": key, "opset": OPSET, "kind": kind, "recipe": RECIPE}


def default_threads() -> int:
    """The cores this process may run on (the ONNX session's intra-op threads)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:           # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def export_span_fp32(folder: Path, out: Path) -> None:
    """The torch span model of checkpoint `folder` -> ONNX graph `out` over gathered word embeddings, and the
    embedding matrix beside it (EMBEDDINGS); checked against the torch model on a padded batch of ids."""
    import torch

    from odqa.modeling.checkpoint import load_model
    tokenizer, model, _ = load_model(folder, "span", device="cpu")
    model.backbone.set_attn_implementation("eager")      # plain MatMul/Softmax: ONNX Runtime fuses them
    types = "token_type_ids" in tokenizer.model_input_names

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs_embeds, attention_mask, token_type_ids=None):
            kw = {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kw["token_type_ids"] = token_type_ids
            return self.m.head(self.m.backbone(**kw).last_hidden_state, attention_mask)

    wrapper = Logits(model).eval()
    table = model.backbone.get_input_embeddings().weight.detach().float().numpy()
    vocab = int(table.shape[0])
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (2, 11), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    embeds = torch.from_numpy(table[ids.numpy()])
    args = (embeds, mask, torch.zeros_like(ids)) if types else (embeds, mask)
    names = ["inputs_embeds", "attention_mask"] + (["token_type_ids"] if types else [])
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")      # tracer and exporter deprecation chatter
        try:
            torch.onnx.export(wrapper, args, str(out), dynamo=False, opset_version=OPSET, input_names=names,
                              output_names=["start_logits", "end_logits"],
                              dynamic_axes={**{n: axes for n in names}, "start_logits": axes, "end_logits": axes},
                              do_constant_folding=True)
        except Exception as e:  # noqa: BLE001 - surface as one line
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelError(f"ONNX export of reader {folder} failed: {first}") from None
        ref = [t.numpy() for t in model(ids, mask, torch.zeros_like(ids) if types else None)]
    np.save(out.parent / EMBEDDINGS, table)
    got = OnnxSpanModel.over(out, 1).logits({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    m = mask.numpy().astype(bool)
    err = max(float(np.abs(g - r)[m].max()) for g, r in zip(got, ref))
    if not err <= 1e-3 * max(1.0, max(float(np.abs(r[m]).max()) for r in ref)):
        raise ModelError(f"ONNX export of reader {folder} does not reproduce the torch model (max difference {err:.3g})")


def quantize_span_int8(fp32: Path, out: Path) -> None:
    """The int8 graph of fp32 graph `fp32`, with the same embedding rows beside it (a hard link where it can)."""
    quantize_int8(fp32, out)
    src, dst = fp32.parent / EMBEDDINGS, out.parent / EMBEDDINGS
    try:
        os.link(src, dst)
    except OSError:
        import shutil
        shutil.copyfile(src, dst)


def reader_onnx_path(folder: str | Path, runtime: str, cache_dir: str | Path | None = None) -> Path:
    """The cached ONNX file of reader checkpoint `folder` for `runtime` (onnx | onnx-int8), exported when needed."""
    require_onnxruntime(export=False)
    if check_runtime(runtime) == "torch":
        raise ModelError("the torch reader runtime has no ONNX file")
    folder = Path(folder)
    head = folder / HEAD_JSON
    if head.is_file() and json.loads(head.read_text(encoding="utf-8")).get("head", {}).get("em_feature"):
        raise ModelError(f"reader {folder} reads the EM-token feature, which the ONNX runtimes do not feed; "
                         "set `reader_runtime` to torch")
    key = reader_fingerprint(folder)
    fp32 = cached_export(cache_folder(key, "fp32", cache_dir, PREFIX, RECIPE), _meta(key, "fp32"),
                         lambda f: export_span_fp32(folder, f), f"exporting reader {folder} to ONNX (once)")
    if KINDS[runtime] == "fp32":
        return fp32
    return cached_export(cache_folder(key, "int8", cache_dir, PREFIX, RECIPE), _meta(key, "int8"),
                         lambda f: quantize_span_int8(fp32, f), f"quantising reader {fp32} to int8 (once)")


class OnnxSpanModel:
    """The span model in one ONNX Runtime session: `logits(batch of numpy int64 arrays) -> (start, end)`.
    Sessions are thread-safe: one model serves concurrent reads."""
    training = False

    def __init__(self, folder: str | Path, runtime: str, threads: int = 0, cache_dir: str | Path | None = None):
        self.runtime = runtime
        self._open(reader_onnx_path(folder, runtime, cache_dir), threads)

    @classmethod
    def over(cls, model_path: Path, threads: int = 0) -> "OnnxSpanModel":
        """The model of graph `model_path` (and the embedding rows beside it)."""
        obj = cls.__new__(cls)
        obj.runtime = None
        obj._open(model_path, threads)
        return obj

    def _open(self, model_path: Path, threads: int) -> None:
        self.model_path = model_path
        try:
            self.session = session(model_path, threads or default_threads())
            # mapped, not read: a question touches only its tokens' rows
            self.embeddings = np.load(model_path.parent / EMBEDDINGS, mmap_mode="r")
        except OdqaError:
            raise
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"cannot load the cached ONNX reader {model_path} ({str(e).splitlines()[0]}); "
                             f"delete {model_path.parent} to export it again") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def logits(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        ids = batch["input_ids"]
        feed = {"inputs_embeds": np.ascontiguousarray(np.take(self.embeddings, ids, axis=0))}
        for n in self.inputs:
            if n != "inputs_embeds":
                feed[n] = batch[n] if n in batch else np.zeros_like(ids)
        start, end = self.session.run(None, feed)
        return start, end
