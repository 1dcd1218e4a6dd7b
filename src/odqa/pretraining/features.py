"""Corpus text as masked-LM training chunks: sentences packed into chunks of at most `max_length` tokens,
with unit ids when masking is aligned to words or morphemes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from odqa.errors import CorpusError, OdqaError
from odqa.pretraining.config import PretrainConfig
from odqa.pretraining.units import morpheme_segments, token_units, word_segments

_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


@dataclass
class Chunk:
    ids: np.ndarray              # token ids with specials
    special: np.ndarray          # bool per token
    units: np.ndarray | None     # unit id per token (-1 on specials) when aligned


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def pack_texts(texts: Sequence[str], tokenizer, max_length: int, progress: Callable[[int], None] | None = None
               ) -> list[str]:
    """Sentences of the texts packed, in order, into chunk texts of at most max_length tokens
    (specials included); a sentence longer than that is cut at token boundaries."""
    limit = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    chunks: list[str] = []
    cur: list[str] = []
    cur_len = 0
    step = 512
    for i in range(0, len(texts), step):
        batch = texts[i:i + step]
        sents = [s for t in batch for s in split_sentences(t)]
        enc = tokenizer(sents, add_special_tokens=False, return_offsets_mapping=tokenizer.is_fast) if sents else {}
        for j, sent in enumerate(sents):
            n = len(enc["input_ids"][j])
            if n > limit:
                if cur:
                    chunks.append(" ".join(cur))
                    cur, cur_len = [], 0
                chunks.extend(_cut(sent, enc["input_ids"][j], enc.get("offset_mapping", [None] * len(sents))[j],
                                   limit, tokenizer))
                continue
            if cur and cur_len + n > limit:
                chunks.append(" ".join(cur))
                cur, cur_len = [], 0
            cur.append(sent)
            cur_len += n
        if progress:
            progress(len(batch))
    if cur:
        chunks.append(" ".join(cur))
    return chunks


def _cut(sent: str, ids: list[int], offsets, limit: int, tokenizer) -> list[str]:
    out = []
    for s in range(0, len(ids), limit):
        if offsets is not None:
            a, b = offsets[s][0], offsets[min(s + limit, len(ids)) - 1][1]
            piece = sent[a:b]
        else:
            piece = tokenizer.decode(ids[s:s + limit])
        if piece.strip():
            out.append(piece.strip())
    return out


def build_chunks(texts: Sequence[str], tokenizer, cfg: PretrainConfig, quiet: bool = False) -> list[Chunk]:
    """Tokenised chunks (with unit ids when aligned) of the corpus texts."""
    from odqa.progress import bar

    if cfg.align != "none" and not tokenizer.is_fast:
        raise OdqaError(f"`align` {cfg.align} needs a fast tokenizer (offset mapping); this backbone's is slow")
    pbar = bar(len(texts), "chunk", "passage", quiet)
    try:
        chunk_texts = pack_texts(texts, tokenizer, cfg.max_length, pbar.update)
    finally:
        pbar.close()
    morphs = None
    if cfg.align == "morpheme":
        from odqa.text.morphs import morphemes
        morphs = []
        pbar = bar(len(chunk_texts), "morphemes", "chunk", quiet)
        for i in range(0, len(chunk_texts), 256):
            morphs.extend(morphemes(chunk_texts[i:i + 256], cfg.analyzer))
            pbar.update(len(chunk_texts[i:i + 256]))
        pbar.close()
    out: list[Chunk] = []
    for i in range(0, len(chunk_texts), 512):
        batch = chunk_texts[i:i + 512]
        enc = tokenizer(batch, truncation=True, max_length=cfg.max_length, return_special_tokens_mask=True,
                        return_offsets_mapping=cfg.align != "none")
        for j, text in enumerate(batch):
            ids = np.asarray(enc["input_ids"][j], dtype=np.int64)
            special = np.asarray(enc["special_tokens_mask"][j], dtype=bool)
            units = None
            if cfg.align != "none":
                seg = word_segments(text) if cfg.align == "word" else morpheme_segments(text, morphs[i + j])
                units = token_units(enc["offset_mapping"][j], special, seg)
            if (~special).any():
                out.append(Chunk(ids, special, units))
    if not out:
        raise CorpusError("the corpus gave no text to pretrain on")
    return out
