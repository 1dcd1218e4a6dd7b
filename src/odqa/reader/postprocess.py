"""From span logits to answers: a pipeline of small steps.

`window_spans` turns one window's start/end logits into candidate spans (character
offsets into the passage). A question's candidates from every window of every
passage then go through `PostProcessor.steps`, each a function
`(spans, passages) -> spans`:

    merge (best score per passage span) -> [mix retrieval score] -> probabilities
    -> [strip particles] -> top n

Steps are plain callables, so the particle-stripping step (or any other) slots in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from odqa.calibration import tempered
from odqa.types import Answer


Step = Callable[[list[Answer], dict[str, str]], list[Answer]]


def window_spans(start_logits: np.ndarray, end_logits: np.ndarray, offsets: list, n_best: int = 20,
                 max_answer_tokens: int = 30) -> list[tuple[float, int, int]]:
    """(score, char start, char end) for the best valid spans of one window.

    Valid: both ends on context tokens, end >= start, at most `max_answer_tokens` long.
    """
    ctx = np.array([o is not None for o in offsets], dtype=bool)
    n = min(len(offsets), len(start_logits))
    sl = np.where(ctx[:n], start_logits[:n], -np.inf)
    el = np.where(ctx[:n], end_logits[:n], -np.inf)
    k = min(n_best, int(ctx[:n].sum()))
    if k == 0:
        return []
    s_idx = np.argpartition(-sl, k - 1)[:k]
    e_idx = np.argpartition(-el, k - 1)[:k]
    scores = sl[s_idx][:, None] + el[e_idx][None, :]
    length = e_idx[None, :] - s_idx[:, None]
    scores = np.where((length >= 0) & (length < max_answer_tokens), scores, -np.inf)
    out = []
    flat = np.argsort(-scores, axis=None)[:n_best]
    for f in flat:
        i, j = divmod(int(f), k)
        sc = float(scores[i, j])
        if not math.isfinite(sc):
            break
        out.append((sc, offsets[s_idx[i]][0], offsets[e_idx[j]][1]))
    return out


def merge(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
    """One entry per (passage, start, end): the best score over the windows that found it."""
    best: dict[tuple[str, int, int], Answer] = {}
    for s in spans:
        key = (s.passage_id, s.start, s.end)
        if key not in best or s.score > best[key].score:
            best[key] = s
    return sorted(best.values(), key=lambda s: -s.score)


def mix_retrieval(weight: float) -> Step:
    """Add `weight` x the passage's retrieval score (min-max normalised over the question's passages)."""
    def step(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
        if not spans or weight == 0:
            return spans
        r = np.array([s.retrieval_score for s in spans], dtype=float)
        lo, hi = r.min(), r.max()
        norm = (r - lo) / (hi - lo) if hi > lo else np.ones_like(r)
        return sorted((replace(s, score=s.score + weight * float(x)) for s, x in zip(spans, norm)),
                      key=lambda s: -s.score)
    return step


def probabilities(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
    """Softmax of the scores over all of the question's candidates."""
    if not spans:
        return spans
    sc = np.array([s.score for s in spans], dtype=float)
    p = np.exp(sc - sc.max())
    p /= p.sum()
    return [replace(s, probability=float(x)) for s, x in zip(spans, p)]


def regroup(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
    """After a step changed offsets: merge equal spans, summing probabilities, best first."""
    acc: dict[tuple[str, int, int], Answer] = {}
    for s in spans:
        key = (s.passage_id, s.start, s.end)
        if key in acc:
            a = acc[key]
            acc[key] = replace(a, probability=a.probability + s.probability, score=max(a.score, s.score))
        else:
            acc[key] = s
    return sorted(acc.values(), key=lambda s: -s.probability)


def particle_step(rules) -> Step:
    """Strip trailing particles (josa) from each span with learned rules (`text.particles.ParticleRules`)."""
    def step(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
        out = []
        for s in spans:
            ctx = passages.get(s.passage_id)
            if ctx is not None:
                a, b = rules.apply(ctx, s.start, s.end)
                s = replace(s, start=a, end=b, text=ctx[a:b])
            out.append(s)
        return out
    return step


def top(n: int) -> Step:
    return lambda spans, passages: spans[:n]


def temper(temperature: float) -> Step:
    """Calibration: the n-best probabilities p renormalised as p^(1/T) (temperature scaling of the span scores
    over the answers kept; the order never changes). T is fitted on held-out training questions."""
    def step(spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
        if not spans or temperature == 1.0:
            return spans
        p = tempered([s.probability for s in spans], temperature)
        return [replace(s, probability=float(x)) for s, x in zip(spans, p)]
    return step


@dataclass
class PostProcessor:
    steps: list[Step] = field(default_factory=list)

    def __call__(self, spans: list[Answer], passages: dict[str, str]) -> list[Answer]:
        for step in self.steps:
            spans = step(spans, passages)
        return spans


def default_postprocessor(n_best: int = 20, retrieval_weight: float = 0.0, extra: list[Step] | None = None,
                          temperature: float = 1.0) -> PostProcessor:
    """merge -> [mix retrieval] -> probabilities -> [extra steps, e.g. particle stripping] -> top n
    -> [temperature, the reader's calibration]."""
    steps: list[Step] = [merge]
    if retrieval_weight:
        steps.append(mix_retrieval(retrieval_weight))
    steps.append(probabilities)
    if extra:
        steps += list(extra) + [regroup]
    steps.append(top(n_best))
    if temperature != 1.0:
        steps.append(temper(temperature))
    return PostProcessor(steps)
