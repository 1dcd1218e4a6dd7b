"""Run a span model over (question, passages) pairs and collect candidate spans.

Windows of all pairs are batched together, sorted by length so batches carry
little padding; the training task's evaluation and `Reader` share this code. The model is a
torch span model or an ONNX Runtime one (`odqa.reader.onnx_reader.OnnxSpanModel`: numpy in, numpy
out). Inside an `odqa.timing.collect()` the parts are timed: read_tokenize, read_model,
read_postprocess (logits to candidate spans).
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from dataclasses import dataclass

import numpy as np

from odqa.progress import bar
from odqa.reader.em_feature import em_spans, uses_em
from odqa.reader.features import make_windows
from odqa.reader.postprocess import window_spans
from odqa.timing import stage
from odqa.types import Answer, Passage


@dataclass
class WindowSettings:
    max_length: int = 384
    stride: int = 128
    max_query_length: int = 64
    max_answer_tokens: int = 30
    n_best: int = 20


def pad_batch(tokenizer, rows: list[list[int]], types: list[list[int]] | None,
              em: list[list[int]] | None = None) -> dict[str, np.ndarray]:
    """Right-pad a batch of token id lists (and their token types and EM-token ids, when given) into int64
    arrays: input_ids, attention_mask[, token_type_ids][, em_ids]."""
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id or 0
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    out = {"input_ids": ids, "attention_mask": mask}
    for name, lists in (("token_type_ids", types), ("em_ids", em)):
        if lists is not None:
            a = np.zeros((len(rows), width), dtype=np.int64)
            for i, r in enumerate(lists):
                a[i, :len(r)] = r
            out[name] = a
    return out


def collate(tokenizer, rows: list[list[int]], types: list[list[int]] | None,
            em: list[list[int]] | None = None) -> dict:
    """`pad_batch` as torch tensors (torch.long)."""
    import torch
    return {k: torch.from_numpy(v) for k, v in pad_batch(tokenizer, rows, types, em).items()}


def predict_spans(model, tokenizer, questions: list[str], passages: list[list[Passage]],
                  settings: WindowSettings, batch_size: int = 32, retrieval_scores: list[list[float]] | None = None,
                  quiet: bool = True, tokenize_lock=None) -> list[list[Answer]]:
    """Candidate spans per question over every window of every one of its passages (not yet merged).

    A model in training mode is switched to eval for the call and back (the training task's
    evaluation); a model already in eval mode is not touched, so concurrent callers may share it.
    `tokenize_lock` serialises the tokenizer call (fast tokenizers keep truncation settings as state).
    Batches run where the model is (autocast to bf16/fp16 on a GPU; logits read back in fp32)."""
    pair_q, pair_ctx, pair_owner = [], [], []
    for qi, (q, ps) in enumerate(zip(questions, passages)):
        for pj, p in enumerate(ps):
            pair_q.append(q)
            pair_ctx.append(p.text)
            pair_owner.append((qi, pj))
    out: list[list[Answer]] = [[] for _ in questions]
    if not pair_q:
        return out
    em = em_spans(pair_q, pair_ctx) if uses_em(model) else None
    with stage("read_tokenize"), tokenize_lock or nullcontext():
        win = make_windows(tokenizer, pair_q, pair_ctx, settings.max_length, settings.stride,
                           settings.max_query_length, em=em)
    order = sorted(range(len(win)), key=lambda i: len(win.input_ids[i]))
    onnx = hasattr(model, "logits")          # an ONNX Runtime span model: numpy in, numpy out
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    progress = bar(len(order), "reading", "window", quiet=quiet)
    device = None
    with ExitStack() as context:
        if not onnx:                         # an ONNX model takes numpy arrays: torch is not imported for it
            import torch

            from odqa.device import inference_autocast, model_device, to_device_batch
            device = model_device(model)
            context.enter_context(torch.inference_mode())
            context.enter_context(inference_autocast(device))
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            types = [win.token_type_ids[i] for i in idx] if win.token_type_ids is not None else None
            ems = [win.em_ids[i] for i in idx] if win.em_ids is not None else None
            with stage("read_model"):
                if onnx:
                    start, end = model.logits(pad_batch(tokenizer, [win.input_ids[i] for i in idx], types, ems))
                else:
                    batch = collate(tokenizer, [win.input_ids[i] for i in idx], types, ems)
                    start, end = model(**to_device_batch(batch, device))
                    start, end = start.float().cpu().numpy(), end.float().cpu().numpy()
            with stage("read_postprocess"):
                for row, i in enumerate(idx):
                    qi, pj = pair_owner[win.example[i]]
                    p = passages[qi][pj]
                    r = retrieval_scores[qi][pj] if retrieval_scores else 0.0
                    for score, s, e in window_spans(start[row], end[row], win.offsets[i], settings.n_best,
                                                    settings.max_answer_tokens):
                        out[qi].append(Answer(p.text[s:e], p.id, s, e, score, retrieval_score=r))
            progress.update(len(idx))
    progress.close()
    if was_training:
        model.train()
    return out

