"""ONNX Runtime backend of the dense encoder (`dense.quantize: onnx | onnx-int8`).

The encoder (BertModel -> last_hidden_state, dynamic batch and sequence axes) is
exported once with torch's TorchScript exporter and cached under
``<odqa cache>/onnx/<encoder sha256[:16]>-opset<N>-<fp32|int8>-r<recipe>/`` (written
with `odqa.atomic.AtomicFolder`, so a killed export never leaves half a model). A
``odqa_onnx.json`` sidecar records the full encoder sha256, opset, recipe and the
model file's own checksums: its sha256 and the fast checksum of `odqa.checksums`, which each load
checks (a new process hashes the whole file). A cache entry that does not match (missing, truncated,
corrupt, other recipe) is exported again.

int8 is ONNX Runtime dynamic quantisation of the weight MatMuls: signed int8
weights, per output channel, reduce_range (7-bit weights, which avoids the u8*s8
pair-sum saturation of AVX2 kernels without VNNI). Activation x activation MatMuls
(attention scores) and the embedding table stay fp32. Measured on e5-small against
QUInt8 weights (slower, cosine about the same), per-tensor QInt8 (cosine to fp32 only
0.95) and a quantised embedding table (file 3x smaller, worst-case cosine a bit lower).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from odqa.atomic import AtomicFolder
from odqa.errors import ModelError, OdqaError
from odqa.modeling.encoders import encoder_fingerprint, mean_pool_np

OPSET = 17
RECIPE = 1          # bump when the export or quantisation recipe changes: old cache entries are not reused
MODEL_FILE = "model.onnx"
SIDECAR = "odqa_onnx.json"
KINDS = {"onnx": "fp32", "onnx-int8": "int8"}
INSTALL_HINT = "dense quantize 'onnx'/'onnx-int8' needs onnxruntime and onnx: pip install 'odqa[onnx]'"

log = logging.getLogger(__name__)


def require_onnxruntime(export: bool = True):
    """Import onnxruntime (and with `export`, check onnx is there for export/quantisation) or fail with one line."""
    try:
        if export:
            import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        raise ModelError(INSTALL_HINT) from None
    return onnxruntime


def cache_folder(encoder_sha256: str, kind: str, cache_dir: str | Path | None = None, prefix: str = "",
                 recipe: int = RECIPE) -> Path:
    """`<cache>/onnx/<prefix><key[:16]>-opset<N>-<kind>-r<recipe>` (prefix: what the model is, e.g. `reader-`)."""
    from odqa.modeling.backbone import default_cache_dir
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / "onnx" / f"{prefix}{_key(encoder_sha256)[:16]}-opset{OPSET}-{kind}-r{recipe}"


def _key(encoder_sha256: str) -> str:
    """A hex key: the weight file's sha256, or the sha256 of a hub fingerprint ("hub:name")."""
    if len(encoder_sha256) == 64 and all(c in "0123456789abcdef" for c in encoder_sha256):
        return encoder_sha256
    import hashlib
    return hashlib.sha256(encoder_sha256.encode("utf-8")).hexdigest()


def _meta(encoder_sha256: str, kind: str) -> dict:
    return {"encoder_sha256": encoder_sha256, "opset": OPSET, "kind": kind, "recipe": RECIPE}


def _problem(folder: Path, want: dict) -> str | None:
    """Why the cache entry in `folder` is unusable (None when it is fine)."""
    from odqa.modeling.backbone import file_sha256
    if not folder.is_dir():
        return "missing"
    try:
        meta = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{SIDECAR} missing or unreadable"
    if {k: meta.get(k) for k in want} != want:
        return "made for another encoder/opset/recipe"
    f = folder / MODEL_FILE
    if not f.is_file():
        return f"{MODEL_FILE} missing"
    if f.stat().st_size != meta.get("bytes") or not _same_content(f, meta):
        return f"{MODEL_FILE} does not match its recorded checksum (corrupt or truncated)"
    others = meta.get("others")
    if others:                                  # files the export wrote beside the model (e.g. its embeddings)
        from odqa.checksums import problems
        found = problems(folder, others)
        if found:
            return found[0]
    return None


def _same_content(f: Path, meta: dict) -> bool:
    """The model file against its sidecar: the fast checksum (`odqa.checksums`) where one is recorded, else the
    sha256 (entries written before the fast one was recorded)."""
    from odqa.checksums import file_digest
    fast = meta.get("checksum")
    if isinstance(fast, dict) and fast.get("algorithm") and fast.get("hash"):
        try:
            return file_digest(f, fast["algorithm"]) == fast["hash"]
        except ValueError:                   # an algorithm this installation lacks: the sha256 decides
            pass
    from odqa.modeling.backbone import file_sha256
    return file_sha256(f) == meta.get("sha256")


def _publish(folder: Path, write, meta: dict) -> Path:
    """Write MODEL_FILE with `write(tmp_file)` and the sidecar, atomically, into `folder`. Files `write` puts
    beside MODEL_FILE are recorded in the sidecar too, and checked with it."""
    from odqa.checksums import ALGORITHM, file_digest, record
    from odqa.modeling.backbone import file_sha256
    with AtomicFolder(folder) as tmp:
        write(tmp / MODEL_FILE)
        f = tmp / MODEL_FILE
        extra = {"bytes": f.stat().st_size, "sha256": file_sha256(f),
                 "checksum": {"algorithm": ALGORITHM, "hash": file_digest(f)}}
        others = record(tmp, skip=(MODEL_FILE, SIDECAR))
        if others["files"]:
            extra["others"] = others
        (tmp / SIDECAR).write_text(json.dumps({**meta, **extra}, indent=2) + "\n", encoding="utf-8")
    return folder / MODEL_FILE


def export_fp32(spec: str, out: Path) -> None:
    """torch BertModel -> ONNX (input_ids, attention_mask -> last_hidden_state), checked against torch."""
    import torch
    from odqa.modeling.backbone import load_backbone

    _, model = load_backbone(spec, attn_implementation="eager")  # plain MatMul/Softmax: ORT fuses them

    class LastHidden(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    wrapper = LastHidden(model).eval()  # eval on the wrapper: export restores the wrapper's mode afterwards
    vocab = int(model.config.vocab_size)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (2, 9), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
        try:  # the TorchScript exporter: needs neither onnxscript nor torch.export-friendly model code
            torch.onnx.export(wrapper, (ids, mask), str(out), dynamo=False, opset_version=OPSET,
                              input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                              do_constant_folding=True)
        except Exception as e:  # noqa: BLE001 - surface as one line
            raise ModelError(f"ONNX export of '{spec}' failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        ref = wrapper(ids, mask).numpy()
    got = session(out, 1).run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    err = float(np.abs(got - ref)[mask.numpy().astype(bool)].max())
    if not err <= 1e-3 * max(1.0, float(np.abs(ref).max())):
        raise ModelError(f"ONNX export of '{spec}' does not reproduce the torch encoder (max difference {err:.3g})")


def quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8 of the weight MatMuls (QInt8, per channel, reduce_range; see the module doc)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs "consider pre-processing" advice on the root logger (calling basicConfig when the
    # root has no handler): drop its records and keep the root logger as it was
    root = logging.getLogger()
    quiet = _DropOnnxruntime()
    null = logging.NullHandler() if not root.handlers else None
    root.addFilter(quiet)
    if null:
        root.addHandler(null)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(out), op_types_to_quantize=["MatMul"], per_channel=True,
                             reduce_range=True, weight_type=QuantType.QInt8,
                             extra_options={"MatMulConstBOnly": True})
    finally:
        root.removeFilter(quiet)
        if null:
            root.removeHandler(null)


class _DropOnnxruntime(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname and not record.name.startswith("onnxruntime")


def onnx_model_path(spec: str, path: str, quantize: str, cache_dir: str | Path | None = None) -> Path:
    """The cached ONNX file for encoder `spec` (folder `path`) and `quantize`, exporting it when needed."""
    require_onnxruntime(export=False)
    if quantize not in KINDS:
        raise ModelError(f"not an onnx quantize setting: '{quantize}' (choose onnx or onnx-int8)")
    sha = encoder_fingerprint(path)
    kind = KINDS[quantize]
    if kind == "fp32":
        return cached_export(cache_folder(sha, kind, cache_dir), _meta(sha, kind), lambda f: export_fp32(spec, f),
                             f"exporting {spec} to ONNX (once)")
    fp32 = onnx_model_path(spec, path, "onnx", cache_dir)
    return cached_export(cache_folder(sha, kind, cache_dir), _meta(sha, kind), lambda f: quantize_int8(fp32, f),
                         f"quantising {fp32} to int8 (once)")


def cached_export(folder: Path, meta: dict, write, what: str) -> Path:
    """`folder`'s model file when its sidecar matches `meta` and the file its recorded sha256; else written
    again by `write(tmp_file)` (atomically, sidecar beside it). `what` names the work in the log."""
    why = _problem(folder, meta)
    if why is None:
        return folder / MODEL_FILE
    require_onnxruntime()                    # exporting and quantising need onnx too
    if why != "missing":
        log.warning("ONNX cache %s: %s; exporting again", folder, why)
    log.info("%s: %s", what, folder)
    return _publish(folder, write, meta)


def session(model: Path, threads: int):
    """A CPU ONNX Runtime session: sequential execution, `threads` intra-op threads (0 = onnxruntime's default)."""
    ort = require_onnxruntime(export=False)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    if threads:
        so.intra_op_num_threads = threads  # 0: onnxruntime's default (one per physical core)
    # idle workers sleep instead of spinning between ops: on a shared CPU spinning took cycles from the
    # compute threads (int8, batch 16: 24.5 vs 18.7 passages/s); each op is large, so waking costs little
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """One ONNX Runtime session over the cached encoder; `run` gives last_hidden_state as numpy."""

    def __init__(self, spec: str, path: str, quantize: str, threads: int = 0, cache_dir: str | Path | None = None):
        self.model_path = onnx_model_path(spec, path, quantize, cache_dir)
        try:
            self.session = session(self.model_path, threads)
        except OdqaError:
            raise
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"cannot load the cached ONNX encoder {self.model_path} ({str(e).splitlines()[0]}); "
                            f"delete {self.model_path.parent} to export it again") from None

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]


class OnnxRuntime:
    """The encoder exported to ONNX (fp32 or int8), run by ONNX Runtime; `threads` sizes its session."""
    name = "onnx"

    def __init__(self, spec: str, path: str | Path, quantize: str, threads: int = 0):
        from transformers import AutoConfig

        self.runner = OnnxRunner(spec, str(path), quantize, threads)
        self.model_path = self.runner.model_path
        self.dim = int(AutoConfig.from_pretrained(str(path)).hidden_size)

    def vectors(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return mean_pool_np(self.runner.run(input_ids, attention_mask), attention_mask)
