"""Entity markers: rewrite a sentence so the encoder sees where subject and object are.

Styles (Zhou & Chen 2021, "An Improved Baseline for Sentence-level Relation Extraction"):
- ``typed`` (default): typed entity markers with punctuation, no new vocabulary:
  ``@ * PER * 이순신 @은 # ^ ORG ^ 조선 #의 무신``: subject in ``@ * TYPE * ... @``,
  object in ``# ^ TYPE ^ ... #``.
- ``e1``: special tokens ``[E1] 이순신 [/E1]`` and ``[E2] 조선 [/E2]`` (added to the
  tokenizer; the embedding matrix is resized).
- ``none``: the sentence unchanged.

Subject and object may come in either order (and may nest); all offsets in the
result refer to the marked text, and ``text[word_start:word_end + 1]`` is the word
(when the spans nest, the outer word also holds the inner markers).
The *anchor* of an entity is the character the entity-start pooling reads: the
opening marker, or the first character of the word for ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass

from odqa.errors import OdqaError
from odqa.relation.data import Entity

MARKER_STYLES = ("typed", "e1", "none")
E1_TOKENS = ["[E1]", "[/E1]", "[E2]", "[/E2]"]


@dataclass(frozen=True)
class MarkedSpan:
    open_start: int    # first character of the opening marker (= word_start when unmarked)
    word_start: int
    word_end: int      # inclusive
    close_end: int     # last character of the closing marker, inclusive (= word_end when unmarked)


@dataclass(frozen=True)
class Marked:
    text: str
    subject: MarkedSpan
    object: MarkedSpan

    def anchors(self) -> tuple[int, int]:
        """Characters whose tokens entity-start pooling reads: (subject, object)."""
        return self.subject.open_start, self.object.open_start


def special_tokens(style: str) -> list[str]:
    """Tokens the tokenizer must learn for `style` (only `e1` has any)."""
    check_style(style)
    return list(E1_TOKENS) if style == "e1" else []


def check_style(style: str) -> None:
    if style not in MARKER_STYLES:
        raise OdqaError(f"marker style {style!r} unknown: choose one of {', '.join(MARKER_STYLES)}")


def _wrappers(style: str, role: str, etype: str) -> tuple[str, str]:
    if style == "typed":
        return (f"@ * {etype} * ", " @") if role == "subject" else (f"# ^ {etype} ^ ", " #")
    if style == "e1":
        return ("[E1] ", " [/E1]") if role == "subject" else ("[E2] ", " [/E2]")
    return "", ""


def mark(sentence: str, subject: Entity, obj: Entity, style: str = "typed") -> Marked:
    """Insert the markers of `style` around subject and object (offsets inclusive, as KLUE)."""
    check_style(style)
    # (char position, tie order, text, role, kind); a piece inserted at position p goes before
    # sentence[p]. At one position closers go first, then the opener of the longer span.
    ins = []
    for role, e in (("subject", subject), ("object", obj)):
        if not 0 <= e.start <= e.end < len(sentence):
            raise OdqaError(f"{role} offsets {e.start}..{e.end} outside the sentence (length {len(sentence)})")
        pre, post = _wrappers(style, role, e.type)
        ins.append((e.start, (1, -(e.end - e.start)), pre, role, "open"))
        ins.append((e.end + 1, (0, e.end - e.start), post, role, "close"))
    ins.sort(key=lambda t: (t[0], t[1]))
    pieces, at_open, at_close, cursor, length = [], {}, {}, 0, 0
    for at, _, piece, role, kind in ins:
        pieces.append(sentence[cursor:at])
        length += at - cursor
        cursor = at
        if kind == "open":
            at_open[role] = length
        pieces.append(piece)
        length += len(piece)
        if kind == "close":
            at_close[role] = length - 1
    pieces.append(sentence[cursor:])

    def new(i: int) -> int:   # marked-text index of sentence[i]
        return i + sum(len(piece) for at, _, piece, _, _ in ins if at <= i)

    def span(role: str, e: Entity) -> MarkedSpan:
        return MarkedSpan(at_open[role], at_open[role] + len(_wrappers(style, role, e.type)[0]), new(e.end),
                          at_close[role] if style != "none" else new(e.end))

    return Marked("".join(pieces), span("subject", subject), span("object", obj))
