"""Relation features: the marked sentence tokenised whole; when it is longer than `max_length`, a token
window that keeps both entities (with their markers) is cut, or, when they are too far apart, two half
windows starting at each entity. Batches pad dynamically (`Features.collate`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from odqa.errors import OdqaError
from odqa.relation.data import REExample
from odqa.relation.markers import mark


@dataclass
class Features:
    ids: list[np.ndarray]
    positions: np.ndarray        # (n, 2): token index of the subject and object anchors
    labels: np.ndarray           # (n,): label index, -1 when unknown
    example_ids: list[str]
    pad_id: int
    truncated: int = 0           # examples cut to fit max_length

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))

    def collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        width = max(len(self.ids[i]) for i in idx)
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for r, i in enumerate(idx):
            ids[r, :len(self.ids[i])] = self.ids[i]
            mask[r, :len(self.ids[i])] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "positions": torch.from_numpy(self.positions[idx]), "labels": torch.from_numpy(self.labels[idx])}


def _char_token(enc, b: int, char: int, step: int, limit: int) -> int:
    """Token holding `char`, or the nearest one in direction `step` (whitespace has none)."""
    c = char
    while 0 <= c < limit:
        t = enc.char_to_token(b, c)
        if t is not None:
            return t
        c += step
    raise OdqaError(f"no token covers character {char}")


def _window(n: int, budget: int, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Token ranges [a, b) (at most `budget` tokens) of a body of `n` tokens keeping `spans` (inclusive)."""
    if n <= budget:
        return [(0, n)]
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans) + 1
    if hi - lo <= budget:
        start = max(0, min(lo - (budget - (hi - lo)) // 2, n - budget))
        return [(start, start + budget)]
    (s1, _), (s2, _) = sorted(spans)
    half = budget // 2
    a1, b1 = s1, s1 + half
    b2 = min(n, s2 + budget - half)
    a2 = max(b1, b2 - (budget - half))
    return [(a1, b1), (a2, b2)]


def featurize(examples: list[REExample], tokenizer, markers: str, max_length: int,
              labels: list[str] | None = None, chunk: int = 1024) -> Features:
    """Token ids and entity anchor positions for each example (labels mapped when `labels` is given)."""
    index = {lab: i for i, lab in enumerate(labels or [])}
    ids, pos, labs, truncated = [], [], [], 0
    for c0 in range(0, len(examples), chunk):
        part = examples[c0:c0 + chunk]
        marked = [mark(ex.sentence, ex.subject, ex.object, markers) for ex in part]
        enc = tokenizer([m.text for m in marked], add_special_tokens=True, truncation=False, verbose=False)
        for b, (ex, m) in enumerate(zip(part, marked)):
            full = enc["input_ids"][b]
            seq = enc.sequence_ids(b)
            lead = next((i for i, s in enumerate(seq) if s is not None), len(seq))
            trail = next((i for i, s in enumerate(reversed(seq)) if s is not None), 0)
            n = len(full) - lead - trail
            budget = max_length - lead - trail
            limit = len(m.text)
            spans, anchors = [], []
            for sp in (m.subject, m.object):
                a = _char_token(enc, b, sp.open_start, +1, limit) - lead
                e = _char_token(enc, b, sp.close_end, -1, limit) - lead
                spans.append((a, max(a, e)))
                anchors.append(a)
            win = _window(n, budget, spans)
            body = full[lead:lead + n]
            kept, new_pos, offset = [], [], 0
            for a, e in win:
                kept.extend(body[a:e])
            for anc in anchors:
                offset = 0
                for a, e in win:
                    if a <= anc < e:
                        new_pos.append(lead + offset + anc - a)
                        break
                    offset += e - a
                else:   # cannot happen with _window's guarantees; keep CLS as a safe fallback
                    new_pos.append(0)
            truncated += len(kept) < n
            ids.append(np.asarray(full[:lead] + kept + full[len(full) - trail:], dtype=np.int64))
            pos.append(new_pos)
            labs.append(index[ex.label] if labels is not None and ex.label is not None else -1)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Features(ids, np.asarray(pos, dtype=np.int64).reshape(-1, 2), np.asarray(labs, dtype=np.int64),
                    [ex.id for ex in examples], pad, truncated)
