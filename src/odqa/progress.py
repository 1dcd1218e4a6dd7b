"""Progress bars on stderr (tqdm), silenced with ODQA_QUIET=1 or quiet=True."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from odqa.settings import env


class _Bar(tqdm):
    """Shows a count moved by fractions (pieces of a long passage) with one decimal."""

    @property
    def format_dict(self):
        d = super().format_dict
        if isinstance(d["n"], float):
            d["n"] = round(d["n"], 1)
        return d


def bar(total: int | None, desc: str, unit: str = "it", quiet: bool = False) -> tqdm:
    disable = quiet or env().quiet
    return _Bar(total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True,
                leave=False)


def note(msg: str, quiet: bool = False) -> None:
    """One `odqa: ...` line on stderr (a run's header), unless quiet."""
    if not (quiet or env().quiet):
        print(f"odqa: {msg}", file=sys.stderr, flush=True)
