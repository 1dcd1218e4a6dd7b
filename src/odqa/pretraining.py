"""Masked-LM domain-adaptive pretraining: SpanBERT-style span masking or BERT token masking.

    odqa pretrain --corpus bench/corpus.jsonl --out runs/e5-span --objective span --align morpheme

Pieces, each usable alone:

* `mask_tokens` - the masking sampler: a pure function of (token ids, special-token mask,
  optional unit ids, seed). 15 % of the maskable tokens (never specials or padding) are
  chosen; `span` draws span lengths, in units, from a geometric distribution with p = 0.2
  truncated to 1..10 (SpanBERT; mean 3.80 units, `mean_span_length`), `token` chooses
  single units (BERT; whole-word masking when aligned). Chosen tokens become [MASK] 80 %,
  a random token 10 %, unchanged 10 % (decided per span for `span`, per token for `token`).
  Labels are the original ids there and -100 elsewhere.
* units (`align`): `none` = each token, `word` = whitespace words, `morpheme` = mecab/kiwi
  morphemes mapped onto the fast tokenizer's offsets. A token that covers parts of two
  words/morphemes joins them into one unit, so masking never splits a word/morpheme.
* `build_chunks` - corpus passages split into sentences and packed into chunks of at most
  `max_length` tokens; `PretrainTask` - the shared training loop's task (dynamic masking:
  fresh masks every epoch, a pure function of epoch and seed; held-out chunks with fixed
  masks give the evaluation loss).
* `load_mlm` - the backbone with an MLM head. The offline e5 folder holds an encoder only:
  the missing head is initialised fresh with its output projection tied to the word
  embeddings (`tie_word_embeddings`), and that is reported.
* `run_pretrain` - all of it; the result is published atomically as a backbone folder (HF
  model + tokenizer + `odqa_pretrain.json`) that `load_backbone(folder)` reads as a plain
  encoder, checked by `verify_backbone_folder` before it is published.
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
from pydantic import Field

from odqa.version import __version__
from odqa.config import Section, with_changes
from odqa.errors import CorpusError, ModelError, OdqaError
from odqa.training import TrainConfig

log = logging.getLogger(__name__)

OBJECTIVES = ("span", "token")
ALIGNS = ("none", "word", "morpheme")
MANIFEST = "odqa_pretrain.json"
MANIFEST_FORMAT = "odqa-pretrain"
MANIFEST_VERSION = 1
REPLACE = (0.8, 0.1, 0.1)   # [MASK], random token, unchanged
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


def _pretrain_train_defaults() -> TrainConfig:
    return TrainConfig(lr=5e-5)


class PretrainConfig(Section):
    """Masking, chunking and the backbone; `train` is the shared loop's settings (lr 5e-5 by default). Checked
    when made: a bad value is one ConfigError line naming its field."""
    backbone: str = Field("offline:multilingual-e5-small", min_length=1)
    objective: Literal["span", "token"] = "span"
    align: Literal["none", "word", "morpheme"] = "none"
    analyzer: Literal["mecab", "kiwi"] = "mecab"   # morpheme analyzer for align=morpheme
    max_length: int = Field(256, ge=8)           # tokens per chunk, specials included
    mask_ratio: float = Field(0.15, gt=0, lt=1)
    span_p: float = Field(0.2, gt=0, le=1)       # geometric parameter of span lengths
    max_span: int = Field(10, ge=1)              # longest span, in units
    holdout: float = Field(0.02, ge=0, lt=0.5)   # share of chunks held out for the evaluation loss
    max_eval_chunks: int = Field(512, ge=1)
    freeze_embeddings: bool = True               # word embeddings (and the tied output projection) stay fixed
    head_warmup_steps: int = Field(0, ge=0)      # first optimizer steps train the MLM head only (encoder untouched)
    corpus_format: Literal["auto", "wiki", "jsonl", "squad", "txt"] = "auto"
    train: TrainConfig = Field(default_factory=_pretrain_train_defaults)

    def masking(self) -> dict:
        """The settings a resumed run must share with its checkpoint (all but the loop's)."""
        return self.model_dump(exclude={"train"})


# ===================================================================== masking
def span_length_probs(p: float = 0.2, max_span: int = 10) -> np.ndarray:
    """P(length = 1..max_span): geometric with parameter p, truncated and renormalised (SpanBERT)."""
    k = np.arange(1, max_span + 1)
    w = p * (1 - p) ** (k - 1)
    return w / w.sum()


def mean_span_length(p: float = 0.2, max_span: int = 10) -> float:
    """Expected span length in units: 3.80 for SpanBERT's p = 0.2, max 10 (3.04 for p = 0.3)."""
    return float((np.arange(1, max_span + 1) * span_length_probs(p, max_span)).sum())


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _unit_runs(unit_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token ranges [start, end) of maximal runs of equal unit id >= 0 at consecutive positions."""
    pos = np.flatnonzero(unit_ids >= 0)
    if pos.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.ones(pos.size, bool)
    new[1:] = (np.diff(pos) != 1) | (unit_ids[pos[1:]] != unit_ids[pos[:-1]])
    starts = pos[new]
    ends = np.append(pos[np.flatnonzero(new)[1:] - 1] + 1, pos[-1] + 1)
    return starts, ends


def _random_tokens(rng: np.random.Generator, n: int, vocab_size: int, exclude: np.ndarray) -> np.ndarray:
    out = rng.integers(0, vocab_size, n)
    bad = np.isin(out, exclude)
    while bad.any():
        out[bad] = rng.integers(0, vocab_size, int(bad.sum()))
        bad = np.isin(out, exclude)
    return out


def sample_spans(special_mask: Sequence[bool], *, seed: int | np.random.Generator | Sequence[int] = 0,
                 objective: str = "span", units: Sequence[int] | None = None, ratio: float = 0.15,
                 span_p: float = 0.2, max_span: int = 10) -> list[list[tuple[int, int]]]:
    """Choose what to mask in one sequence: a list of spans, each a list of units as token ranges [a, b).

    `special_mask` is True for special tokens and padding (never chosen). `units` gives a unit
    id per token (word or morpheme; -1 = special): a unit is a run of tokens with one id and is
    taken whole. The budget is round(ratio x maskable tokens), at least 1; a unit that would
    cross it is taken only if that lands closer to the budget. `span`: lengths in units drawn
    from the truncated geometric (`span_length_probs`), starting at a random free unit, cut at
    a taken unit, a special token or the budget. `token`: single units.
    """
    if objective not in OBJECTIVES:
        raise OdqaError(f"unknown objective '{objective}' (choose from {', '.join(OBJECTIVES)})")
    rng = _rng(seed)
    special = np.asarray(special_mask, dtype=bool)
    if units is None:
        unit_ids = np.where(special, -1, np.arange(special.size))
    else:
        unit_ids = np.asarray(units, dtype=np.int64)
        if unit_ids.shape != special.shape:
            raise ValueError("units must have one entry per token")
        unit_ids = np.where(special, -1, unit_ids)
    starts, ends = _unit_runs(unit_ids)
    n_units = starts.size
    if n_units == 0:
        return []
    sizes = ends - starts
    budget = max(1, int(round(ratio * int(sizes.sum()))))
    cdf = np.cumsum(span_length_probs(span_p, max_span))
    adjacent = np.append(starts[1:] == ends[:-1], False)   # unit k+1 follows unit k directly
    taken = np.zeros(n_units, bool)
    spans: list[list[int]] = []
    total, attempts, cap = 0, 0, 100 + 20 * budget
    while total < budget and attempts < cap:
        attempts += 1
        length = 1 if objective == "token" else int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")) + 1
        k = int(rng.integers(n_units))
        chosen: list[int] = []
        while len(chosen) < length and k < n_units and not taken[k]:
            left = budget - total
            if sizes[k] > 2 * left:          # overshooting by more than the remaining budget
                break
            chosen.append(k)
            total += int(sizes[k])
            if total >= budget or not adjacent[k]:
                break
            k += 1
        if chosen:
            taken[chosen] = True
            spans.append(chosen)
            continue
        free = sizes[~taken]
        if free.size == 0 or not (free <= 2 * (budget - total)).any():   # nothing fits any more
            break
    return [[(int(starts[k]), int(ends[k])) for k in span] for span in spans]


def mask_tokens(input_ids: Sequence[int], special_mask: Sequence[bool], *, mask_id: int, vocab_size: int,
                seed: int | np.random.Generator | Sequence[int] = 0, objective: str = "span",
                units: Sequence[int] | None = None, ratio: float = 0.15, span_p: float = 0.2, max_span: int = 10,
                special_ids: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Mask one sequence; returns (masked input ids, labels: original ids where masked, -100 elsewhere).

    Positions come from `sample_spans`; each chosen position becomes `mask_id` 80 %, a random
    non-special token 10 %, stays 10 % - decided per span (`span`, SpanBERT) or per token
    (`token`, BERT). A pure function of its arguments (pass an int or a seed sequence).
    """
    rng = _rng(seed)
    ids = np.asarray(input_ids, dtype=np.int64)
    if len(special_mask) != ids.size:
        raise ValueError("special_mask must have one entry per token")
    spans = sample_spans(special_mask, seed=rng, objective=objective, units=units, ratio=ratio, span_p=span_p,
                         max_span=max_span)
    labels = np.full(ids.shape, -100, dtype=np.int64)
    out = ids.copy()
    if objective == "token":   # replacement decided per token (BERT)
        positions = [np.array([t]) for span in spans for a, b in span for t in range(a, b)]
    else:                      # per span (SpanBERT)
        positions = [np.concatenate([np.arange(a, b) for a, b in span]) for span in spans]
    exclude = np.asarray(sorted(set(special_ids) | {mask_id}), dtype=np.int64)
    for pos in positions:
        labels[pos] = ids[pos]
        r = rng.random()
        if r < REPLACE[0]:
            out[pos] = mask_id
        elif r < REPLACE[0] + REPLACE[1]:
            out[pos] = _random_tokens(rng, pos.size, vocab_size, exclude)
    return out, labels


# ====================================================================== units
def _segments(text: str, starts: Sequence[int]) -> np.ndarray:
    """Char -> segment id (-1 on whitespace); a segment starts at each given offset and after whitespace."""
    n = len(text)
    mark = np.zeros(n, bool)
    for s in starts:
        if 0 <= s < n:
            mark[s] = True
    space = np.fromiter((c.isspace() for c in text), bool, n)
    if n:
        mark[0] = True
        mark[1:] |= space[:-1] & ~space[1:]
    seg = np.cumsum(mark) - 1
    seg[space] = -1
    return seg


def word_segments(text: str) -> np.ndarray:
    return _segments(text, [])


def morpheme_segments(text: str, morphs) -> np.ndarray:
    return _segments(text, [m.start for m in morphs])


def token_units(offsets: Sequence[tuple[int, int]], special: Sequence[bool], seg: np.ndarray) -> np.ndarray:
    """Unit id per token (-1 for specials): tokens covering a common segment share a unit.

    A token of whitespace only (a lone `▁`) joins the unit of the segment that follows it.
    """
    n = len(offsets)
    units = np.full(n, -1, dtype=np.int64)
    valid = np.flatnonzero(seg >= 0)
    cur, hi = -1, -1
    for t in range(n):
        if special[t]:
            hi = -1
            continue
        s, e = offsets[t]
        segs = seg[s:e]
        segs = segs[segs >= 0]
        if segs.size:
            lo, top = int(segs.min()), int(segs.max())
        else:
            j = np.searchsorted(valid, e)
            lo = top = int(seg[valid[j]]) if j < valid.size else (int(seg[valid[-1]]) if valid.size else 0)
        if cur >= 0 and hi >= 0 and lo <= hi:
            hi = max(hi, top)
        else:
            cur += 1
            hi = top
        units[t] = cur
    return units


# ===================================================================== chunks
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
        raise OdqaError(f"--align {cfg.align} needs a fast tokenizer (offset mapping); this backbone's is slow")
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


# ====================================================================== model
def _mlm_head(model):
    base = model.base_model
    heads = [m for _, m in model.named_children() if m is not base]
    return heads[0] if len(heads) == 1 else None


def load_mlm(spec: str) -> tuple[Any, Any, dict]:
    """(tokenizer, masked-LM model, head report). A missing MLM head is initialised with its output
    projection tied to the word embeddings."""
    from transformers import AutoModelForMaskedLM

    from odqa.modeling.backbone import load_backbone

    try:
        tokenizer, (model, info) = load_backbone(spec, auto_class=AutoModelForMaskedLM, output_loading_info=True)
    except (ValueError, OSError) as e:
        raise ModelError(f"backbone {spec}: cannot load a masked-LM model ({' '.join(str(e).split())[:300]})") from None
    if tokenizer.mask_token_id is None:
        raise ModelError(f"backbone {spec}: its tokenizer has no mask token")
    prefix = model.base_model_prefix + "."
    missing = sorted(info.get("missing_keys", []))
    base_missing = [k for k in missing if k.startswith(prefix) and "position_ids" not in k]
    if base_missing:
        raise ModelError(f"backbone {spec}: encoder weights missing from the checkpoint ({', '.join(base_missing[:3])})")
    head_missing = [k for k in missing if not k.startswith(prefix)]
    out_emb, in_emb = model.get_output_embeddings(), model.get_input_embeddings()
    tied = out_emb is not None and out_emb.weight.data_ptr() == in_emb.weight.data_ptr()
    if head_missing and out_emb is not None and not tied and any(k.endswith("decoder.weight") for k in head_missing):
        out_emb.weight = in_emb.weight
        model.config.tie_word_embeddings = True
        tied = True
    report = {"head_initialised": bool(head_missing), "missing_head_weights": head_missing,
              "output_tied_to_embeddings": tied}
    if head_missing:
        log.warning("backbone %s has no MLM head (%d weights missing): initialised fresh, output projection %s",
                    spec, len(head_missing), "tied to the word embeddings" if tied else "NOT tied")
    return tokenizer, model, report


def masked_lm_loss(model, batch, reduction: str = "mean", encoder_grad: bool = True):
    """Cross-entropy over the labelled positions only (the 250k-way output is never computed elsewhere).

    `encoder_grad=False` runs the encoder without a graph: only the MLM head learns from the loss
    (the head warm-up; cheaper too, no backward pass through the encoder)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    labels = batch["labels"]
    head = None if hasattr(model, "module") else _mlm_head(model)   # DDP (accelerate launch): its forward syncs
    if head is None:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    with contextlib.nullcontext() if encoder_grad else torch.no_grad():
        hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    sel = labels != -100
    if not bool(sel.any()):
        return hidden.sum() * 0.0
    logits = head(hidden[sel])
    return F.cross_entropy(logits.float(), labels[sel], reduction=reduction)


# ======================================================================= task
class PretrainTask:
    """The training loop's task for masked-LM pretraining."""

    def __init__(self, tokenizer, chunks: list[Chunk], cfg: PretrainConfig, batch_size: int, seed: int = 42,
                 base_e5_prefixes: bool = False, manifest: dict | None = None):
        self.tok, self.cfg, self.batch_size, self.seed = tokenizer, cfg, batch_size, seed
        self.e5 = base_e5_prefixes
        self.manifest = manifest or {}
        self.step = 0
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.mask_id = tokenizer.mask_token_id
        self.vocab = len(tokenizer)
        self.special_ids = list(tokenizer.all_special_ids)
        order = np.random.default_rng(seed).permutation(len(chunks))
        n_hold = int(len(chunks) * cfg.holdout)
        if cfg.holdout > 0 and n_hold == 0 and len(chunks) >= 2:
            n_hold = 1
        n_hold = min(n_hold, cfg.max_eval_chunks)
        self.heldout = [chunks[i] for i in sorted(order[:n_hold])]
        self.train = [chunks[i] for i in sorted(order[n_hold:])]
        self._eval_batches = [self._collate(self.heldout[s:s + batch_size], [seed, 10**6, s])
                              for s in range(0, len(self.heldout), batch_size)]

    def _mask(self, chunk: Chunk, seed) -> tuple[np.ndarray, np.ndarray]:
        c = self.cfg
        return mask_tokens(chunk.ids, chunk.special, mask_id=self.mask_id, vocab_size=self.vocab, seed=seed,
                           objective=c.objective, units=chunk.units, ratio=c.mask_ratio, span_p=c.span_p,
                           max_span=c.max_span, special_ids=self.special_ids)

    def _collate(self, chunks: list[Chunk], seed: list[int]) -> dict:
        import torch
        width = max(len(c.ids) for c in chunks)
        ids = np.full((len(chunks), width), self.pad_id, dtype=np.int64)
        labels = np.full((len(chunks), width), -100, dtype=np.int64)
        att = np.zeros((len(chunks), width), dtype=np.int64)
        for r, c in enumerate(chunks):
            x, y = self._mask(c, np.random.default_rng([*seed, r]))
            ids[r, :len(x)], labels[r, :len(y)], att[r, :len(x)] = x, y, 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(att),
                "labels": torch.from_numpy(labels)}

    def num_train_batches(self) -> int:
        return (len(self.train) + self.batch_size - 1) // self.batch_size

    def train_batches(self, epoch: int, seed: int) -> Iterator[dict]:
        order = np.random.default_rng([seed, epoch]).permutation(len(self.train))
        for b, s in enumerate(range(0, len(order), self.batch_size)):
            yield self._collate([self.train[i] for i in order[s:s + self.batch_size]], [seed, epoch, b])

    def set_step(self, step: int) -> None:
        self.step = step

    def loss(self, model, batch):
        """During the first `head_warmup_steps` steps the encoder is not trained: a freshly initialised
        MLM head would otherwise send random gradients into it (e5 ships without one)."""
        return masked_lm_loss(model, batch, encoder_grad=self.step >= self.cfg.head_warmup_steps)

    def evaluate(self, model) -> dict[str, float]:
        """Masked-LM loss (mean over masked tokens) on the held-out chunks, fixed masks."""
        import torch
        if not self._eval_batches:
            return {}
        was = model.training
        model.eval()
        from odqa.device import model_device, to_device_batch
        total, count, device = 0.0, 0, model_device(model)
        with torch.inference_mode():
            for batch in self._eval_batches:
                n = int((batch["labels"] != -100).sum())
                if n:
                    total += float(masked_lm_loss(model, to_device_batch(batch, device), reduction="sum"))
                    count += n
        model.train(was)
        if not count:
            return {}
        loss = total / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    def save(self, model, folder: Path) -> None:
        model.config.odqa_e5_prefixes = self.e5
        model.save_pretrained(folder)
        self.tok.save_pretrained(folder)
        (folder / MANIFEST).write_text(json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n",
                                       encoding="utf-8")


# ================================================================ publishing
def _safetensors_state(folder: Path) -> dict:
    from safetensors.torch import load_file
    index = folder / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    state = {}
    for f in files:
        if not (folder / f).exists():
            raise ModelError(f"{folder}: weights file {f} is missing")
        state.update(load_file(str(folder / f)))
    return state


def verify_backbone_folder(folder: str | Path) -> dict:
    """Load `folder` as consumers do (`load_backbone(folder)`, a plain encoder) and check that every
    encoder weight loads, equal to the saved one, and that the tokenizer loads."""
    import torch

    from odqa.modeling.backbone import load_backbone

    folder = Path(folder)
    tok, (model, info) = load_backbone(str(folder), output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if missing:
        raise ModelError(f"{folder}: does not load as an encoder backbone (missing {', '.join(sorted(missing)[:3])})")
    saved = _safetensors_state(folder)
    prefix = getattr(model, "base_model_prefix", "")
    compared = 0
    for name, tensor in model.state_dict().items():
        ref = saved.get(f"{prefix}.{name}", saved.get(name))
        if ref is None:
            continue
        if ref.shape != tensor.shape or not torch.equal(ref.to(tensor.dtype), tensor):
            raise ModelError(f"{folder}: encoder weight {name} differs from the saved one after loading")
        compared += 1
    if compared == 0:
        raise ModelError(f"{folder}: no encoder weight of the saved file matched the loaded encoder")
    return {"encoder_tensors": compared, "tokenizer": type(tok).__name__, "vocab": len(tok),
            "model": type(model).__name__}


def publish(best: Path, out: Path, manifest: dict) -> dict:
    """Copy the best checkpoint to `out` atomically with the final manifest, after verifying it."""
    from odqa.atomic import AtomicFolder
    from odqa.checksums import write_checksums

    if not (best / "config.json").exists():
        raise OdqaError(f"no checkpoint to publish in {best}")
    with AtomicFolder(out) as tmp:
        for f in best.iterdir():
            if f.is_file() and f.name not in (MANIFEST, "training_state.pt"):
                shutil.copy2(f, tmp / f.name)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_checksums(tmp)                # again: the manifest changed after training recorded them
        for f in tmp.iterdir():
            f.chmod(0o644)
        check = verify_backbone_folder(tmp)
    return check


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: not a pretrained backbone folder (no {MANIFEST})") from None
    except ValueError as e:
        raise ModelError(f"{path}: malformed JSON ({e})") from None


# ======================================================================= run
def _check_resumable(run_dir: Path, base: dict) -> None:
    """A resumed run must see the same corpus, backbone and masking settings as the checkpoint."""
    path = run_dir / "last" / MANIFEST
    if not path.exists():
        raise OdqaError(f"cannot resume: no checkpoint at {run_dir / 'last'} (pretrain once without --resume)")
    try:
        prev = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise OdqaError(f"{path}: malformed JSON; cannot resume") from None
    for what, a, b in (("corpus", prev.get("corpus", {}).get("sha256"), base["corpus"]["sha256"]),
                       ("backbone", prev.get("base_backbone"), base["base_backbone"]),
                       ("settings", prev.get("config"), base["config"])):
        if a != b:
            raise OdqaError(f"cannot resume {run_dir}: {what} changed since the checkpoint "
                            "(start a new run without --resume, or use another --run-dir)")


# the optimisation fields of the TrainConfig recorded in a pretrained backbone's manifest
PUBLISHED_TRAIN_FIELDS = ("lr", "weight_decay", "warmup_ratio", "batch_size", "grad_accum", "epochs", "max_steps",
                          "stop_after", "eval_every", "save_every", "time_budget_minutes", "seed")


def run_pretrain(corpus: str | Path, out: str | Path, cfg: PretrainConfig | None = None,
                 run_dir: str | Path | None = None, resume: bool = False, quiet: bool = False) -> dict:
    """Pretrain `cfg.backbone` on `corpus` and publish a backbone folder at `out`.

    Checkpoints, history and the resumable state live in `run_dir` (default: OUT.run next to
    OUT). Returns the report (also stored in the manifest). Usable from tests:

        run_pretrain(corpus, tmp / "pt", PretrainConfig(backbone=str(tiny), max_length=32,
                                                        train=TrainConfig(max_steps=2, batch_size=4)), quiet=True)
        tokenizer, model = load_backbone(str(tmp / "pt"))
    """
    from odqa.corpus import load_corpus
    from odqa.modeling.backbone import backbone_info, wants_e5_prefixes
    from odqa.training import frozen_prefixes, train

    cfg = cfg or PretrainConfig()
    run = cfg.train
    out = Path(out)
    run_dir = Path(run_dir) if run_dir else out.with_name(out.name + ".run")
    if run_dir.resolve() == out.resolve():
        raise OdqaError("the run folder must differ from the output folder")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise OdqaError(f"{out} exists and is not a pretrained backbone folder: refusing to replace it")
    t0 = time.perf_counter()
    info = backbone_info(cfg.backbone)
    corp = load_corpus(corpus, cfg.corpus_format)
    tokenizer, model, head = load_mlm(cfg.backbone)
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and cfg.max_length > positions:
        raise OdqaError(f"--max-length {cfg.max_length} exceeds the backbone's {positions} positions")
    chunks = build_chunks([p.text for p in corp.passages], tokenizer, cfg, quiet)
    base = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "odqa_version": __version__,
            "base_backbone": cfg.backbone, "base_backbone_info": info.to_dict(),
            "corpus": {"path": corp.source, "sha256": corp.sha256, "passages": len(corp.passages)},
            "config": cfg.masking(), "mask": {"ratio": cfg.mask_ratio, "replace": list(REPLACE),
                                             "mean_span_length": round(mean_span_length(cfg.span_p, cfg.max_span), 4)
                                             if cfg.objective == "span" else 1.0},
            "mlm_head": head}
    if cfg.align == "morpheme":
        from odqa.text.morphs import analyzer_version
        base["analyzer"] = {"name": cfg.analyzer, "version": analyzer_version(cfg.analyzer)}
    if resume:
        _check_resumable(run_dir, base)
    task = PretrainTask(tokenizer, chunks, cfg, run.batch_size, run.seed, wants_e5_prefixes(info.path), base)
    base["corpus"].update(chunks_train=len(task.train), chunks_heldout=len(task.heldout),
                          train_tokens=int(sum(len(c.ids) for c in task.train)))
    # the task decides what is measured and frozen; the caller the optimisation and the budget
    tcfg = with_changes(run, metric="loss", greater_is_better=False,
                        freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    before = None if resume else task.evaluate(model).get("loss")
    res = train(model, task, tcfg, run_dir, resume=resume, quiet=quiet)
    best_state = json.loads((run_dir / "best" / "odqa_train_state.json").read_text())
    report = {"out": str(out), "run_dir": str(run_dir), "objective": cfg.objective, "align": cfg.align,
              "steps": res.steps, "best_step": res.best_step, "heldout_loss_before": before,
              "heldout_loss": res.best_metric, "stopped": res.stopped_reason, "epochs_done": res.epochs_done,
              "seconds": round(time.perf_counter() - t0, 1), "train_seconds": round(res.seconds, 1),
              "seconds_per_step": round(res.seconds / max(1, res.steps), 3) if not resume else None,
              "chunks_train": len(task.train), "chunks_heldout": len(task.heldout), "mlm_head": head}
    manifest = {**base, "steps": best_state.get("step", res.best_step), "total_steps": res.steps,
                "stopped": res.stopped_reason, "time_budget_minutes": run.time_budget_minutes,
                "max_steps": run.max_steps, "train": {k: v for k, v in tcfg.model_dump().items() if k in PUBLISHED_TRAIN_FIELDS},
                "heldout_loss_before": before, "heldout_loss": res.best_metric,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    report["verified"] = publish(run_dir / "best", out, manifest)
    return report
