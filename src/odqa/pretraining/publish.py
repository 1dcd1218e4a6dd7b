"""Publishing a pretrained backbone: the best checkpoint copied atomically with its manifest, verified to load
as a plain encoder first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from odqa.errors import ModelError, OdqaError

MANIFEST = "odqa_pretrain.json"
MANIFEST_FORMAT = "odqa-pretrain"
MANIFEST_VERSION = 1


def _safetensors_state(folder: Path) -> dict:
    from safetensors.torch import load_file
    index = folder / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    state = {}
    for f in files:
        if not (folder / f).exists():
            raise ModelError(f"{folder}: weights file {f} is missing")
        state.update(load_file(str(folder / f)))
    return state


def verify_backbone_folder(folder: str | Path) -> dict:
    """Load `folder` as consumers do (`load_backbone(folder)`, a plain encoder) and check that every
    encoder weight loads, equal to the saved one, and that the tokenizer loads."""
    import torch

    from odqa.modeling.backbone import load_backbone

    folder = Path(folder)
    tok, (model, info) = load_backbone(str(folder), output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if missing:
        raise ModelError(f"{folder}: does not load as an encoder backbone (missing {', '.join(sorted(missing)[:3])})")
    saved = _safetensors_state(folder)
    prefix = getattr(model, "base_model_prefix", "")
    compared = 0
    for name, tensor in model.state_dict().items():
        ref = saved.get(f"{prefix}.{name}", saved.get(name))
        if ref is None:
            continue
        if ref.shape != tensor.shape or not torch.equal(ref.to(tensor.dtype), tensor):
            raise ModelError(f"{folder}: encoder weight {name} differs from the saved one after loading")
        compared += 1
    if compared == 0:
        raise ModelError(f"{folder}: no encoder weight of the saved file matched the loaded encoder")
    return {"encoder_tensors": compared, "tokenizer": type(tok).__name__, "vocab": len(tok),
            "model": type(model).__name__}


def publish(best: Path, out: Path, manifest: dict) -> dict:
    """Copy the best checkpoint to `out` atomically with the final manifest, after verifying it."""
    from odqa.atomic import AtomicFolder
    from odqa.checksums import write_checksums

    if not (best / "config.json").exists():
        raise OdqaError(f"no checkpoint to publish in {best}")
    with AtomicFolder(out) as tmp:
        for f in best.iterdir():
            if f.is_file() and f.name not in (MANIFEST, "training_state.pt"):
                shutil.copy2(f, tmp / f.name)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_checksums(tmp)                # again: the manifest changed after training recorded them
        for f in tmp.iterdir():
            f.chmod(0o644)
        check = verify_backbone_folder(tmp)
    return check


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: not a pretrained backbone folder (no {MANIFEST})") from None
    except ValueError as e:
        raise ModelError(f"{path}: malformed JSON ({e})") from None
