"""The EM-token feature: which passage characters belong to a content morpheme that also occurs in the
question (MeCab morphemes, content POS as the index keeps them, NFKC-lowercased forms).

Computed alike at training (`ReaderTask`) and at inference (`predict_spans`), so a reader trained with
`em_feature` reads with it everywhere; `make_windows` turns the spans into one 0/1 id per token (1 = a
context token overlapping a marked span), which the head's learned 2-row embedding adds to the token
embeddings (`SpanHead.em`).
"""

from __future__ import annotations

import unicodedata
from typing import Sequence

from odqa.text.analyzers import DEFAULT_POS
from odqa.text.morphs import morphemes


def _content(tag: str) -> bool:
    return tag.split("+", 1)[0].startswith(DEFAULT_POS)


def _form(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def em_spans(questions: Sequence[str], contexts: Sequence[str], analyzer: str = "mecab") -> list[list[tuple[int, int]]]:
    """Per (question, context) pair, the character spans of the context's content morphemes found among the
    question's content morphemes. Each distinct text is analysed once."""
    texts = list(dict.fromkeys([*questions, *contexts]))
    analysed = dict(zip(texts, morphemes(texts, analyzer)))
    q_forms = {q: {_form(m.form) for m in analysed[q] if _content(m.tag)} for q in set(questions)}
    return [[(m.start, m.end) for m in analysed[c] if _content(m.tag) and _form(m.form) in q_forms[q]]
            for q, c in zip(questions, contexts)]


def token_marks(offsets: Sequence[tuple[int, int] | None], spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 for each token whose character span overlaps one of `spans`, else 0 (non-context tokens: 0)."""
    out = []
    for o in offsets:
        out.append(int(o is not None and any(s < o[1] and o[0] < e for s, e in spans)))
    return out


def uses_em(model) -> bool:
    """Whether a span model reads the EM-token feature (its head has the embedding)."""
    head = getattr(model, "head", None)
    return getattr(head, "em", None) is not None
