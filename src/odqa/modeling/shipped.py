"""Models that ship with odqa, found by name (`--reader ko-reader`).

Each lives in a folder of the package data (`odqa/data/models/NAME/`, or `$ODQA_MODELS_DIR/NAME/`)
in the compact form of `odqa.modeling.compact`, with a `card.json` (kind, size, data and their
licences, base model, recipe, figures) beside a human-readable `MODEL_CARD.md`. Loading one
rebuilds its checkpoint once into the cache (`materialise`), checking every file by hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from odqa.errors import ModelError
from odqa.modeling.compact import COMPACT_JSON, COMPACT_WEIGHTS, materialise
from odqa.settings import env

CARD = "card.json"
REINSTALL = ("reinstall odqa (`pip install --force-reinstall --no-deps odqa`; in a source checkout "
             "`git checkout -- src/odqa/data/models`)")


def models_dir() -> Path:
    folder = env().models_dir
    return folder if folder else Path(str(resources.files("odqa") / "data" / "models"))


@dataclass
class ShippedModel:
    name: str
    folder: Path
    card: dict

    @property
    def kind(self) -> str:
        return self.card.get("kind", "")

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "size_mb": round(self.size_bytes() / 1e6, 2),
                "path": str(self.folder), **{k: v for k, v in self.card.items() if k not in ("name", "kind")}}


def shipped_models() -> list[ShippedModel]:
    base = models_dir()
    if not base.is_dir():
        return []
    out = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        card = folder / CARD
        try:
            out.append(ShippedModel(folder.name, folder, json.loads(card.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError):
            out.append(ShippedModel(folder.name, folder, {"kind": "?", "problem": f"{card} missing or unreadable"}))
    return out


def find_shipped(name: str, kind: str | None = None) -> ShippedModel | None:
    """The shipped model NAME (None when no such name is installed)."""
    for m in shipped_models():
        if m.name == name and (kind is None or m.kind == kind):
            return m
    return None


def shipped_checkpoint(name: str, kind: str) -> Path:
    """The checkpoint folder of shipped model NAME (rebuilt once from its compact files, checked by hash)."""
    m = find_shipped(name)
    if m is None:
        known = ", ".join(x.name for x in shipped_models()) or "none installed"
        raise ModelError(f"no shipped model named '{name}' ({known}); {REINSTALL}")
    if m.kind != kind:
        raise ModelError(f"shipped model '{name}' is a {m.kind!r} model, not a {kind!r} one")
    for f in (COMPACT_JSON, COMPACT_WEIGHTS):
        if not (m.folder / f).is_file():
            raise ModelError(f"{m.folder / f}: missing from the shipped model '{name}'; {REINSTALL}")
    return materialise(m.folder, reinstall=REINSTALL)


def checkpoint_or_shipped(spec: str | Path | None, kind: str, default: str) -> Path:
    """The checkpoint folder `spec` names: a folder, else a shipped model of that name (`default` when None)."""
    spec = default if spec is None else spec
    if Path(spec).exists():
        return Path(spec)
    if find_shipped(str(spec)) is not None:
        return shipped_checkpoint(str(spec), kind)
    known = ", ".join(m.name for m in shipped_models() if m.kind == kind) or f"no {kind} model installed"
    raise ModelError(f"{spec}: no such checkpoint folder or shipped model ({known})")
