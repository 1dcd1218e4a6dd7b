"""The ```python examples of a documentation page, run in order in one namespace (as a reader would paste
them). A page's examples are executed by its integration's tests; a test fails when an example raises."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(page: str) -> list[str]:
    """The page's ```python blocks (docs/PAGE), in order."""
    return _FENCE.findall((DOCS / page).read_text(encoding="utf-8"))


def run_examples(page: str) -> dict:
    """Execute the page's python blocks one after another; returns the namespace they leave."""
    blocks = python_blocks(page)
    assert blocks, f"docs/{page} has no ```python example"
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(blocks, 1):
        exec(compile(code, f"docs/{page} (example {i})", "exec"), namespace)
    return namespace
