"""The masking sampler: which units of a sequence are masked (span or token objective) and how."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from odqa.errors import OdqaError

OBJECTIVES = ("span", "token")
REPLACE = (0.8, 0.1, 0.1)   # [MASK], random token, unchanged


def span_length_probs(p: float = 0.2, max_span: int = 10) -> np.ndarray:
    """P(length = 1..max_span): geometric with parameter p, truncated and renormalised (SpanBERT)."""
    k = np.arange(1, max_span + 1)
    w = p * (1 - p) ** (k - 1)
    return w / w.sum()


def mean_span_length(p: float = 0.2, max_span: int = 10) -> float:
    """Expected span length in units: 3.80 for SpanBERT's p = 0.2, max 10 (3.04 for p = 0.3)."""
    return float((np.arange(1, max_span + 1) * span_length_probs(p, max_span)).sum())


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _unit_runs(unit_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token ranges [start, end) of maximal runs of equal unit id >= 0 at consecutive positions."""
    pos = np.flatnonzero(unit_ids >= 0)
    if pos.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.ones(pos.size, bool)
    new[1:] = (np.diff(pos) != 1) | (unit_ids[pos[1:]] != unit_ids[pos[:-1]])
    starts = pos[new]
    ends = np.append(pos[np.flatnonzero(new)[1:] - 1] + 1, pos[-1] + 1)
    return starts, ends


def _random_tokens(rng: np.random.Generator, n: int, vocab_size: int, exclude: np.ndarray) -> np.ndarray:
    out = rng.integers(0, vocab_size, n)
    bad = np.isin(out, exclude)
    while bad.any():
        out[bad] = rng.integers(0, vocab_size, int(bad.sum()))
        bad = np.isin(out, exclude)
    return out


def sample_spans(special_mask: Sequence[bool], *, seed: int | np.random.Generator | Sequence[int] = 0,
                 objective: str = "span", units: Sequence[int] | None = None, ratio: float = 0.15,
                 span_p: float = 0.2, max_span: int = 10) -> list[list[tuple[int, int]]]:
    """Choose what to mask in one sequence: a list of spans, each a list of units as token ranges [a, b).

    `special_mask` is True for special tokens and padding (never chosen). `units` gives a unit
    id per token (word or morpheme; -1 = special): a unit is a run of tokens with one id and is
    taken whole. The budget is round(ratio x maskable tokens), at least 1; a unit that would
    cross it is taken only if that lands closer to the budget. `span`: lengths in units drawn
    from the truncated geometric (`span_length_probs`), starting at a random free unit, cut at
    a taken unit, a special token or the budget. `token`: single units.
    """
    if objective not in OBJECTIVES:
        raise OdqaError(f"unknown objective '{objective}' (choose from {', '.join(OBJECTIVES)})")
    rng = _rng(seed)
    special = np.asarray(special_mask, dtype=bool)
    if units is None:
        unit_ids = np.where(special, -1, np.arange(special.size))
    else:
        unit_ids = np.asarray(units, dtype=np.int64)
        if unit_ids.shape != special.shape:
            raise ValueError("units must have one entry per token")
        unit_ids = np.where(special, -1, unit_ids)
    starts, ends = _unit_runs(unit_ids)
    n_units = starts.size
    if n_units == 0:
        return []
    sizes = ends - starts
    budget = max(1, int(round(ratio * int(sizes.sum()))))
    cdf = np.cumsum(span_length_probs(span_p, max_span))
    adjacent = np.append(starts[1:] == ends[:-1], False)   # unit k+1 follows unit k directly
    taken = np.zeros(n_units, bool)
    spans: list[list[int]] = []
    total, attempts, cap = 0, 0, 100 + 20 * budget
    while total < budget and attempts < cap:
        attempts += 1
        length = 1 if objective == "token" else int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")) + 1
        k = int(rng.integers(n_units))
        chosen: list[int] = []
        while len(chosen) < length and k < n_units and not taken[k]:
            left = budget - total
            if sizes[k] > 2 * left:          # overshooting by more than the remaining budget
                break
            chosen.append(k)
            total += int(sizes[k])
            if total >= budget or not adjacent[k]:
                break
            k += 1
        if chosen:
            taken[chosen] = True
            spans.append(chosen)
            continue
        free = sizes[~taken]
        if free.size == 0 or not (free <= 2 * (budget - total)).any():   # nothing fits any more
            break
    return [[(int(starts[k]), int(ends[k])) for k in span] for span in spans]


def mask_tokens(input_ids: Sequence[int], special_mask: Sequence[bool], *, mask_id: int, vocab_size: int,
                seed: int | np.random.Generator | Sequence[int] = 0, objective: str = "span",
                units: Sequence[int] | None = None, ratio: float = 0.15, span_p: float = 0.2, max_span: int = 10,
                special_ids: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Mask one sequence; returns (masked input ids, labels: original ids where masked, -100 elsewhere).

    Positions come from `sample_spans`; each chosen position becomes `mask_id` 80 %, a random
    non-special token 10 %, stays 10 % - decided per span (`span`, SpanBERT) or per token
    (`token`, BERT). A pure function of its arguments (pass an int or a seed sequence).
    """
    rng = _rng(seed)
    ids = np.asarray(input_ids, dtype=np.int64)
    if len(special_mask) != ids.size:
        raise ValueError("special_mask must have one entry per token")
    spans = sample_spans(special_mask, seed=rng, objective=objective, units=units, ratio=ratio, span_p=span_p,
                         max_span=max_span)
    labels = np.full(ids.shape, -100, dtype=np.int64)
    out = ids.copy()
    if objective == "token":   # replacement decided per token (BERT)
        positions = [np.array([t]) for span in spans for a, b in span for t in range(a, b)]
    else:                      # per span (SpanBERT)
        positions = [np.concatenate([np.arange(a, b) for a, b in span]) for span in spans]
    exclude = np.asarray(sorted(set(special_ids) | {mask_id}), dtype=np.int64)
    for pos in positions:
        labels[pos] = ids[pos]
        r = rng.random()
        if r < REPLACE[0]:
            out[pos] = mask_id
        elif r < REPLACE[0] + REPLACE[1]:
            out[pos] = _random_tokens(rng, pos.size, vocab_size, exclude)
    return out, labels
