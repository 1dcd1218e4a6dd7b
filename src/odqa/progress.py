"""Progress bars on stderr (tqdm), silenced with ODQA_QUIET=1 or quiet=True."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def bar(total: int | None, desc: str, unit: str = "it", quiet: bool = False) -> tqdm:
    disable = quiet or os.environ.get("ODQA_QUIET") == "1"
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True,
                leave=False)


def note(msg: str, quiet: bool = False) -> None:
    """One `odqa: ...` line on stderr (a run's header), unless quiet."""
    if not (quiet or os.environ.get("ODQA_QUIET") == "1"):
        print(f"odqa: {msg}", file=sys.stderr, flush=True)
