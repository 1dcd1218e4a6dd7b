"""Distillation targets: the soft-voted start and end distributions of teacher readers over the training
windows, so that one student learns what an ensemble knows and answers at one model's cost.

Each teacher reads every training window; its start and end logits, softened by the temperature, become
probabilities, averaged over the teachers (soft voting) and kept as log-probabilities (float16, one array of
shape (2, tokens) per window). They are cached in the run's folder, keyed by the teachers, the temperature and
the windows, so a resumed run does not read them again."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import xxhash

from odqa.errors import ModelError
from odqa.reader.features import Windows
from odqa.reader.inference import collate

log = logging.getLogger(__name__)
CACHE_FILE = "teacher_targets.pt"


def windows_key(win: Windows) -> str:
    h = xxhash.xxh64()
    for ids in win.input_ids:
        h.update(np.asarray(ids, dtype=np.int32).tobytes())
    return h.hexdigest()


def teacher_targets(teachers: list, tokenizer, win: Windows, temperature: float, batch_size: int = 32,
                    progress=None) -> list[np.ndarray]:
    """Per window, log of the teachers' mean softened (start, end) distributions: (2, tokens) float16.
    `teachers`: (tokenizer, model) pairs that share the student's vocabulary."""
    from odqa.modeling.checkpoint import tokenizer_fingerprint
    want = tokenizer_fingerprint(tokenizer)
    for i, (tok, _) in enumerate(teachers):
        if tokenizer_fingerprint(tok) != want:
            raise ModelError(f"teachers[{i}]: its tokenizer differs from the student's (a teacher must share the "
                             "student's backbone vocabulary)")
    order = sorted(range(len(win)), key=lambda i: len(win.input_ids[i]))
    out: list[np.ndarray | None] = [None] * len(win)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            types = [win.token_type_ids[i] for i in idx] if win.token_type_ids is not None else None
            ems = [win.em_ids[i] for i in idx] if win.em_ids is not None else None
            batch = collate(tokenizer, [win.input_ids[i] for i in idx], types, ems)
            probs = None
            for _, model in teachers:
                inputs = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
                if "em_ids" in inputs and getattr(model.head, "em", None) is None:
                    inputs.pop("em_ids")
                start, end = model(**inputs)
                p = torch.softmax(torch.stack((start, end), dim=1).float().cpu() / temperature, dim=-1)
                probs = p if probs is None else probs + p
            logp = torch.log(probs / len(teachers)).clamp(min=-1e4)
            for row, i in enumerate(idx):
                out[i] = logp[row, :, :len(win.input_ids[i])].numpy().astype(np.float16)
            if progress is not None:
                progress(len(idx))
    return out  # type: ignore[return-value]


def load_cache(folder: Path, key: dict) -> list[np.ndarray] | None:
    path = folder / CACHE_FILE
    if not path.exists():
        return None
    try:
        data = torch.load(path, weights_only=False)
    except Exception:                                   # a damaged cache is recomputed, never trusted
        log.warning("%s: unreadable, the teachers read the windows again", path)
        return None
    return data["targets"] if data.get("key") == key else None


def save_cache(folder: Path, key: dict, targets: list[np.ndarray]) -> None:
    from odqa.atomic import atomic_file
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_file(folder / CACHE_FILE) as tmp:
        torch.save({"key": key, "targets": targets}, tmp)


def cache_key(teachers: list[str], temperature: float, win: Windows) -> dict:
    return {"teachers": [str(t) for t in teachers], "temperature": float(temperature), "windows": len(win),
            "ids": windows_key(win), "format": 1}

