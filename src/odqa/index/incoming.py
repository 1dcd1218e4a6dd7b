"""The passages an update adds, read and cleaned as a build reads a corpus (`odqa.corpus.CorpusStream`):
text cleaned, empty ones skipped, exact-duplicate texts within them merged into aliases. Shared by the
local and Elasticsearch backends."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from odqa.corpus import CorpusStream
from odqa.corpus.stream import _text_key
from odqa.errors import CorpusError
from odqa.text.pieces import clean
from odqa.types import Passage


def incoming(source, cfg: dict) -> tuple[list[Passage], dict[str, str], int, str]:
    """(passages, aliases among them, empty ones skipped, a label for messages) of a corpus file read with
    the index's corpus settings, or of Passage objects / dicts (cleaned and de-duplicated the same way)."""
    if isinstance(source, (str, Path)):
        stream = CorpusStream(source, "auto", cfg.get("chunk_size", 0), cfg.get("chunk_overlap", 0),
                              cfg.get("dedup", True), cfg.get("encoding"))
        try:
            passages = list(stream)
        except CorpusError as e:
            if "no passages with text" in str(e):
                return [], stream.aliases, stream.n_empty, str(source)
            raise
        return passages, stream.aliases, stream.n_empty, str(source)
    out, aliases, by_text, seen, empty = [], {}, {}, set(), 0
    for i, p in enumerate(source):
        if isinstance(p, dict):
            try:
                p = Passage(str(p["id"]), str(p.get("title", "")), str(p["text"]), str(p.get("doc_id", "")))
            except KeyError as e:
                raise CorpusError(f"passage {i}: field {e} missing") from None
        p = dataclasses.replace(p, id=clean(p.id), title=clean(p.title), text=clean(p.text), doc_id=clean(p.doc_id))
        if not p.text.strip():
            empty += 1
            continue
        key = _text_key(p.text.strip()) if cfg.get("dedup", True) else None
        if key is not None and key in by_text:
            if p.id != by_text[key]:
                aliases[p.id] = by_text[key]
            continue
        if p.id in seen:
            raise CorpusError(f"passage {i}: duplicate passage id '{p.id}' with different text")
        seen.add(p.id)
        if key is not None:
            by_text[key] = p.id
        out.append(p)
    return out, aliases, empty, f"{len(out)} passages"
