"""Morphemes with character offsets (mecab or kiwi), for span-level work.

`analyzers.py` turns texts into index terms; this module keeps what those drop:
where each morpheme sits in the text (`start`, `end`, end exclusive), its POS tag
and its surface form. Used by particle stripping (`particles.py`) and by
morpheme-aligned masking in `odqa.pretraining`. No torch here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from odqa.errors import OdqaError
from odqa.text.analyzers import installed_version, mecab_tagger
from odqa.text.pieces import map_pieces

MORPH_ANALYZERS = ("mecab", "kiwi")


@dataclass(frozen=True)
class Morph:
    start: int   # character offsets into the analysed text, end exclusive
    end: int
    tag: str     # e.g. "JKS", or "VCP+EP" for a contracted (inflected) surface
    form: str    # the surface text[start:end]


_KIWI = None
_KIWI_LOCK = threading.Lock()     # one shared Kiwi; callers take turns


def _mecab():
    try:
        return mecab_tagger()
    except ImportError:
        raise OdqaError("analyzer 'mecab' needs python-mecab-ko: pip install python-mecab-ko") from None


def _kiwi_tokenize(texts: list[str]) -> list:
    global _KIWI
    with _KIWI_LOCK:
        if _KIWI is None:
            try:
                from kiwipiepy import Kiwi
            except ImportError:
                raise OdqaError("analyzer 'kiwi' needs kiwipiepy: pip install kiwipiepy") from None
            _KIWI = Kiwi(num_workers=1, load_typo_dict=False, load_multi_dict=False)
        return list(_KIWI.tokenize(texts))


def _from_mecab(text: str) -> list[Morph]:
    return [Morph(m.span.start, m.span.end, m.feature.pos, text[m.span.start:m.span.end])
            for m in _mecab().parse(text) if m.span.end > m.span.start]


def _from_kiwi_tokens(text: str, tokens) -> list[Morph]:
    out: list[Morph] = []
    for t in tokens:
        s, e = t.start, t.start + t.len
        if e <= s:
            continue
        if out and s < out[-1].end:   # contracted morphemes share characters (였 = 이 + 었): merge
            prev = out[-1]
            e = max(e, prev.end)
            out[-1] = Morph(prev.start, e, f"{prev.tag}+{t.tag}", text[prev.start:e])
        else:
            out.append(Morph(s, e, t.tag, text[s:e]))
    return out


def _shift(morphs: list[Morph], offset: int) -> list[Morph]:
    return [Morph(m.start + offset, m.end + offset, m.tag, m.form) for m in morphs]


def _mecab_batch(texts: list[str]) -> list[list[Morph]]:
    return [_from_mecab(t) for t in texts]


def _kiwi_batch(texts: list[str]) -> list[list[Morph]]:
    return [_from_kiwi_tokens(t, toks) for t, toks in zip(texts, _kiwi_tokenize(texts))]


def check_analyzer(name: str) -> str:
    if name not in MORPH_ANALYZERS:
        raise OdqaError(f"unknown morpheme analyzer '{name}' (choose from {', '.join(MORPH_ANALYZERS)})")
    return name


def analyzer_version(name: str) -> str:
    return installed_version(check_analyzer(name))


@lru_cache(maxsize=512)
def _cached(text: str, analyzer: str) -> tuple[Morph, ...]:
    return tuple(morphemes([text], analyzer)[0])


def analyse(text: str, analyzer: str = "mecab") -> tuple[Morph, ...]:
    """Morphemes of one text (memoised: post-processing asks about the same passage many times)."""
    return _cached(text, check_analyzer(analyzer))


def morphemes(texts: Sequence[str], analyzer: str = "mecab") -> list[list[Morph]]:
    """Morphemes of each text, in order, with character offsets (long texts analysed in pieces)."""
    check_analyzer(analyzer)
    run = _mecab_batch if analyzer == "mecab" else _kiwi_batch
    return map_pieces(list(texts), run, shift=_shift, max_pieces=256)
