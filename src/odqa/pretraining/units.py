"""Masking units: whitespace words or morphemes mapped onto a fast tokenizer's offsets."""

from __future__ import annotations

from typing import Sequence

import numpy as np

ALIGNS = ("none", "word", "morpheme")


def _segments(text: str, starts: Sequence[int]) -> np.ndarray:
    """Char -> segment id (-1 on whitespace); a segment starts at each given offset and after whitespace."""
    n = len(text)
    mark = np.zeros(n, bool)
    for s in starts:
        if 0 <= s < n:
            mark[s] = True
    space = np.fromiter((c.isspace() for c in text), bool, n)
    if n:
        mark[0] = True
        mark[1:] |= space[:-1] & ~space[1:]
    seg = np.cumsum(mark) - 1
    seg[space] = -1
    return seg


def word_segments(text: str) -> np.ndarray:
    return _segments(text, [])


def morpheme_segments(text: str, morphs) -> np.ndarray:
    return _segments(text, [m.start for m in morphs])


def token_units(offsets: Sequence[tuple[int, int]], special: Sequence[bool], seg: np.ndarray) -> np.ndarray:
    """Unit id per token (-1 for specials): tokens covering a common segment share a unit.

    A token of whitespace only (a lone `▁`) joins the unit of the segment that follows it.
    """
    n = len(offsets)
    units = np.full(n, -1, dtype=np.int64)
    valid = np.flatnonzero(seg >= 0)
    cur, hi = -1, -1
    for t in range(n):
        if special[t]:
            hi = -1
            continue
        s, e = offsets[t]
        segs = seg[s:e]
        segs = segs[segs >= 0]
        if segs.size:
            lo, top = int(segs.min()), int(segs.max())
        else:
            j = np.searchsorted(valid, e)
            lo = top = int(seg[valid[j]]) if j < valid.size else (int(seg[valid[-1]]) if valid.size else 0)
        if cur >= 0 and hi >= 0 and lo <= hi:
            hi = max(hi, top)
        else:
            cur += 1
            hi = top
        units[t] = cur
    return units
