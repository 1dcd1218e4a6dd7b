"""Sentence-level answers when no trained reader exists.

Each top passage is cut into sentences; the dense encoder scores them against the
question (cosine of e5 `query:`/`passage:` embeddings) and the best sentences are
returned as spans with their character offsets. This is evidence, not an extracted
answer: the CLI says so.
"""

from __future__ import annotations

import re

import numpy as np

from odqa.types import Answer, Hit

_SENT_END = re.compile(r"(?<=[.?!。])\s+|\n+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of sentences: cut after . ? ! followed by whitespace, and at newlines."""
    spans, start = [], 0
    for m in _SENT_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


class SentenceReader:
    """`read_batch` like `Reader`, scoring sentences with a `DenseEncoder`."""

    sentence_level = True
    name = "sentence-level (no trained reader)"

    def __init__(self, encoder, n_best: int = 5, temperature: float = 0.05):
        self.encoder, self.n_best, self.temperature = encoder, n_best, temperature

    def read_batch(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Answer]]:
        out = []
        qv = self.encoder.encode(questions, "query") if questions else np.zeros((0, 1))
        for q_vec, hs in zip(qv, hits):
            cands = [(h, s, e) for h in hs for s, e in split_sentences(h.passage.text)]
            if not cands:
                out.append([])
                continue
            sv = self.encoder.encode([h.passage.text[s:e] for h, s, e in cands], "passage")
            sims = sv @ q_vec
            p = np.exp((sims - sims.max()) / self.temperature)
            p /= p.sum()
            order = np.argsort(-sims)[:self.n_best]
            out.append([Answer(cands[i][0].passage.text[cands[i][1]:cands[i][2]], cands[i][0].passage.id,
                             cands[i][1], cands[i][2], float(sims[i]), float(p[i]), cands[i][0].score)
                        for i in order])
        return out
