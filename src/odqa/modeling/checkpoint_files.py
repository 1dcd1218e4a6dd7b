"""A checkpoint folder's files, checked without torch: the head metadata, the tokenizer and its fingerprint.

`open_checkpoint(folder, kind)` checks a folder (files complete and unaltered, task kind, tokenizer) and returns
(tokenizer, meta) without loading any weights; `hf=False` reads the tokenizer with the `tokenizers` library
alone (`odqa.modeling.tokenizer_file`), which the ONNX runtimes use. Loading the model itself is
`odqa.modeling.checkpoint.load_model`.

The tokenizer fingerprint (a hash of the vocabulary, recorded in the head metadata) takes a second to compute
for a 250k-piece vocabulary; once computed for a set of tokenizer files it is kept under
``<odqa cache>/tokenizers/``, keyed by the files' checksums, the loader and its version, so that a later load
of the same files compares the recorded value instead of hashing the vocabulary again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from odqa.checksums import check_folder, file_digest
from odqa.errors import ModelError

HEAD_JSON = "odqa_head.json"
HEAD_WEIGHTS = "odqa_head.safetensors"
# the files a tokenizer is read from (any of them that a folder holds are part of the fingerprint's key)
_TOKENIZER_INPUTS = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                     "sentencepiece.bpe.model", "spiece.model", "vocab.txt", "vocab.json", "merges.txt")


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of the vocabulary: a head trained with another tokenizer must not load silently."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    h = hashlib.sha256()
    for piece, idx in vocab:
        h.update(f"{idx}\t{piece}\n".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / HEAD_JSON
    if not path.exists():
        raise ModelError(f"{folder}: not an odqa model checkpoint (no {HEAD_JSON})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise ModelError(f"{path}: not UTF-8 text at byte {e.start}") from None


def _fingerprint_file(folder: Path, loader: str) -> Path:
    """Where the fingerprint of `folder`'s tokenizer files, read by `loader`, is kept."""
    from odqa.modeling.backbone import default_cache_dir
    h = hashlib.sha256(loader.encode())
    for name in _TOKENIZER_INPUTS:
        f = folder / name
        if f.is_file():
            h.update(f"\n{name}\t{file_digest(f)}".encode())
    return default_cache_dir() / "tokenizers" / f"{h.hexdigest()[:32]}.json"


def known_fingerprint(folder: Path, tokenizer, loader: str) -> str:
    """`tokenizer_fingerprint(tokenizer)` of the tokenizer read from `folder` by `loader` (its name and version),
    computed once per set of tokenizer files and kept in the cache (an unwritable cache only costs the time)."""
    from odqa.atomic import atomic_write_text
    path = _fingerprint_file(folder, loader)
    try:
        return json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = tokenizer_fingerprint(tokenizer)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"fingerprint": value, "loader": loader}) + "\n")
    except OSError:
        pass
    return value


def _load_tokenizer(folder: Path, hf: bool):
    """(tokenizer, loader name and version): transformers' AutoTokenizer, or with hf=False the folder's
    tokenizer.json through `tokenizers` alone (AutoTokenizer where a folder has no tokenizer.json)."""
    from odqa.modeling.tokenizer_file import TOKENIZER_JSON, TokenizerFile
    if not hf and (folder / TOKENIZER_JSON).is_file():
        import tokenizers
        return TokenizerFile(folder), f"tokenizers-{tokenizers.__version__}"
    import transformers
    from transformers import AutoTokenizer

    from odqa.modeling.backbone import quiet_transformers
    with quiet_transformers():
        return AutoTokenizer.from_pretrained(str(folder)), f"transformers-{transformers.__version__}"


def checked_meta(folder: Path, kind: str) -> dict[str, Any]:
    """The head metadata of checkpoint `folder` once its files are complete and unaltered and it holds a
    `kind` model (a ModelError naming the problem otherwise)."""
    from odqa.modeling.pretrained import check_complete
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    check_complete(folder, extra=(HEAD_WEIGHTS,))      # missing files named together, then altered ones:
    check_folder(folder, ModelError, "retrain it, or copy the checkpoint folder again")     # odqa_checksums.json, when saved by odqa >= 0.1
    meta = read_meta(folder)
    if meta.get("kind") != kind:
        raise ModelError(f"{folder}: holds a {meta.get('kind')!r} model, expected {kind!r}")
    return meta


def open_checkpoint(folder: str | Path, kind: str, hf: bool = True) -> tuple[Any, dict[str, Any]]:
    """(tokenizer, meta) of a checkpoint folder, checked (files complete and unaltered, kind, tokenizer)
    without loading its weights (a runtime that does not run the torch model needs no more). hf=False: the
    tokenizer is a `TokenizerFile` (no transformers import) when the folder has a tokenizer.json."""
    folder = Path(folder)
    meta = checked_meta(folder, kind)
    return checked_tokenizer(folder, meta, hf), meta


def checked_tokenizer(folder: Path, meta: dict[str, Any], hf: bool = True) -> Any:
    """The tokenizer of checkpoint `folder` (meta from `checked_meta`), checked against the one its head was
    trained with."""
    tokenizer, loader = _load_tokenizer(folder, hf)
    if meta.get("tokenizer"):
        got = known_fingerprint(folder, tokenizer, loader)
        if got != meta["tokenizer"]:
            raise ModelError(f"{folder}: tokenizer does not match the one the head was trained with "
                             f"({got} != {meta['tokenizer']})")
    return tokenizer
