"""Shipped models from Python: list them, pack a checkpoint into the compact shipped form."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from odqa.errors import OdqaError
from odqa.modeling.backbone import OFFLINE_E5_SMALL
from odqa.modeling.compact import Precision, pack
from odqa.modeling.shipped import shipped_models


def list_models() -> list[dict]:
    """The installed shipped models: name, kind, size, path and their card (data, licence, figures)."""
    return [m.to_json() for m in shipped_models()]


def pack_model(checkpoint: str | Path, out: str | Path, base: str = OFFLINE_E5_SMALL,
               precision: Precision = "int8") -> dict:
    """The compact form of a reader or RE checkpoint: what training changed over `base`, at `precision`."""
    if precision not in get_args(Precision):
        raise OdqaError(f"`precision` must be {', '.join(get_args(Precision))}, not '{precision}'")
    return pack(checkpoint, out, base, precision)
