"""The one text normalisation for matching, applied alike to passages and questions.

Korean text reaches a corpus in several encodings of the same words: composed syllables (NFC),
decomposed jamo (NFD, as macOS file names and some exports write it), compatibility jamo
(`ㅎㅏㄴ` for `한`), full-width forms (`１９４７`, `ＫＴＸ`) and odd spaces (no-break, ideographic,
zero-width). Every analyzer, the dense encoder and the reader see text through `normalize`, so
each encoding of a word matches every other one. `NORMALIZATION` names the rules and their version;
an index records it in its manifest.

The rules, in order, on each cluster (a character and the characters that combine with it):

1. zero-width characters (U+200B-U+200D, U+2060, U+FEFF, soft hyphen U+00AD) are removed, and
   no-break and other wide spaces (U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000) become " ";
2. a run of compatibility jamo that spells a syllable (initial consonant, vowel, and a final
   consonant not followed by a vowel) becomes that syllable;
3. NFKC: decomposed jamo compose into syllables, full-width letters, digits and signs become
   ASCII, other compatibility characters fold (`①` -> `1`, `㎞` -> `km`);
4. a jamo left alone (no syllable to join) becomes its compatibility jamo, so `ㄱ` is one character
   however it was written.

Case is kept (the analyzers lower-case their terms; the reader's models read case).

Answers and offsets always refer to the original text: `normalize_with_map` returns the
normalised text and, for each of its characters, where it came from (`Normalized.to_original`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

NORMALIZATION = {"name": "odqa-nfkc-ko", "version": 1}

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
WIDE_SPACES = frozenset("\u00a0\u1680\u202f\u205f\u3000" + "".join(chr(c) for c in range(0x2000, 0x200b)))
_ODD = ZERO_WIDTH | WIDE_SPACES

_S_BASE, _L_BASE, _V_BASE, _T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
_COMPAT = range(0x3131, 0x318F)
# what NFKC leaves alone but the rules change: odd spaces, conjoining and compatibility jamo
_SPECIAL = re.compile("[\u00a0\u00ad\u1100-\u11ff\u1680\u2000-\u200d\u202f\u205f\u2060\u3000"
                      "\u3131-\u318e\ua960-\ua97f\ud7b0-\ud7ff\ufeff]")


def _jamo_tables() -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, str]]:
    """(compatibility jamo -> initial index, -> vowel index, -> final index; conjoining jamo -> compatibility)."""
    lead, vowel, tail, compat = {}, {}, {}, {}
    for c in map(chr, _COMPAT):
        name = unicodedata.name(c, "").removeprefix("HANGUL LETTER ")
        for kind, table, base, count in (("CHOSEONG", lead, _L_BASE, 19), ("JUNGSEONG", vowel, _V_BASE, 21),
                                         ("JONGSEONG", tail, _T_BASE + 1, 27)):
            try:
                j = unicodedata.lookup(f"HANGUL {kind} {name}")
            except KeyError:
                continue
            compat.setdefault(j, c)
            if 0 <= ord(j) - base < count:
                table[c] = ord(j) - base + (1 if kind == "JONGSEONG" else 0)
    return lead, vowel, tail, compat


_LEAD, _VOWEL, _TAIL, _TO_COMPAT = _jamo_tables()


def _joins(prev: str, c: str) -> bool:
    """`c` belongs to the cluster ending in `prev` (it combines with it)."""
    return bool(unicodedata.combining(c)) or (0x1160 <= ord(c) <= 0x11FF and ord(prev) >= 0x1100) \
        or (0xD7B0 <= ord(c) <= 0xD7FB)


def _clusters(text: str) -> list[tuple[int, int, str]]:
    """(start, end, normalised piece) of each cluster of `text`, in order."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in _LEAD and i + 1 < n and text[i + 1] in _VOWEL:           # compatibility jamo spelling a syllable
            end = i + 2
            t = 0
            if end < n and text[end] in _TAIL and not (end + 1 < n and text[end + 1] in _VOWEL):
                t, end = _TAIL[text[end]], end + 1
            syllable = chr(_S_BASE + (_LEAD[c] * 21 + _VOWEL[text[i + 1]]) * 28 + t)
            out.append((i, end, syllable))
            i = end
            continue
        end = i + 1
        while end < n and _joins(text[end - 1], text[end]):
            end += 1
        out.append((i, end, _fold(text[i:end])))
        i = end
    return out


def _fold(piece: str) -> str:
    if piece in _ODD:
        return "" if piece in ZERO_WIDTH else " "
    if len(piece) == 1 and ord(piece) in _COMPAT:
        return piece                       # NFKC would turn a lone compatibility jamo into a conjoining one
    out = unicodedata.normalize("NFKC", "".join(c for c in piece if c not in ZERO_WIDTH))
    return "".join(_TO_COMPAT.get(c, c) for c in out) if any(0x1100 <= ord(c) <= 0x11FF for c in out) else out


def _plain(text: str) -> bool:
    """Nothing in `text` changes (the fast path: ASCII, or NFKC text without jamo or odd spaces)."""
    return text.isascii() or (unicodedata.is_normalized("NFKC", text) and not _SPECIAL.search(text))


def normalize(text: str) -> str:
    """`text` as odqa matches it (see the module's rules)."""
    if _plain(text):
        return text
    return "".join(piece for _, _, piece in _clusters(text))


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, for each of its characters, the original span it came from."""
    text: str
    original: str
    starts: tuple[int, ...] | None = None     # None: the text is the original (identity map)
    ends: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """The original span (start, end exclusive) that covers normalised characters [start, end)."""
        if self.starts is None:
            return start, end
        n = len(self.text)
        if n == 0:
            return 0, 0
        start, end = min(max(start, 0), n), min(max(end, 0), n)
        if end <= start:
            s = self.starts[start] if start < n else len(self.original)
            return s, s
        return self.starts[start], self.ends[end - 1]


def normalize_with_map(text: str) -> Normalized:
    """`normalize(text)` with the way back to `text` (every character of a cluster maps to the whole cluster)."""
    if _plain(text):
        return Normalized(text, text)
    pieces, starts, ends = [], [], []
    for s, e, piece in _clusters(text):
        pieces.append(piece)
        starts.extend([s] * len(piece))
        ends.extend([e] * len(piece))
    return Normalized("".join(pieces), text, tuple(starts), tuple(ends))
