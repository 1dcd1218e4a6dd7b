"""An optional dependency imported, or one line naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from odqa.api import MissingExtra


def require(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{module} is not installed: pip install \"odqa[{extra}]\"") from None
