"""How results look on a terminal and in `--json` (renderings of the API's typed results)."""

from __future__ import annotations


def hit_json(h) -> dict:
    p = h.passage
    return {"rank": h.rank, "score": round(h.score, 6), "id": p.id, "title": p.title, "doc_id": p.doc_id,
            "text": p.text, "source": h.source}


def highlight(text: str, start: int, end: int, width: int = 80) -> str:
    """The passage around [start, end) with the answer between « »."""
    a, b = max(0, start - width), min(len(text), end + width)
    return (("…" if a else "") + text[a:start] + "«" + text[start:end] + "»" + text[end:b]
            + ("…" if b < len(text) else "")).replace("\n", " ")


def snippet(text: str, width: int = 160) -> str:
    text = text.replace("\n", " ")
    return text[:width] + ("…" if len(text) > width else "")
