"""`from_pretrained` without its two bad failures: a hub name offline, and an incomplete folder.

- `load_pretrained(load, spec)`: a hub name (`klue/bert-base`) is read from the local HF cache
  first (`local_files_only=True`); only when it is not there is the hub asked, once per name and
  with a short timeout (`HF_HUB_ETAG_TIMEOUT`, default 5 s; none at all with `HF_HUB_OFFLINE=1`).
  An unreachable hub is one `ModelError` line at once, not a minute of retries and a traceback; a
  reachable hub downloads as `from_pretrained` always does.
- `check_complete(folder)`: a local model folder that lacks its config, tokenizer or weights is named
  with the missing file (transformers says "install sentencepiece or tiktoken" when tokenizer.json
  is gone).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from odqa.errors import ModelError
from odqa.settings import env

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model",
                   "vocab.json")
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
HUB_TIMEOUT_S = 5.0


def check_complete(folder: str | Path, extra: tuple[str, ...] = ()) -> None:
    """ModelError naming what a model folder lacks: config.json, a tokenizer (tokenizer.json), weights,
    the `extra` files."""
    folder = Path(folder)
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append("tokenizer.json")
    if not any((folder / f).is_file() for f in WEIGHTS):
        missing.append("model.safetensors")
    missing += [f for f in extra if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"{folder}: incomplete model folder, {' and '.join(missing)} missing: copy the folder "
                         f"again (or save the model again)")


def _hub_timeout() -> float:
    timeout = env().hf_hub_etag_timeout
    return HUB_TIMEOUT_S if timeout is None else timeout


def _offline_hint(name: str) -> str:
    return f"download it on a connected machine (`hf download {name}`, then copy ~/.cache/huggingface) or pass a folder"


@lru_cache(maxsize=64)
def check_hub(name: str) -> None:
    """Raises ModelError unless the model hub answers for `name` (within a few seconds)."""
    from huggingface_hub import constants, model_info
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    if constants.HF_HUB_OFFLINE:
        raise ModelError(f"model '{name}' is not in the local cache and HF_HUB_OFFLINE is set: {_offline_hint(name)}")
    try:
        model_info(name, timeout=_hub_timeout())
    except RepositoryNotFoundError:
        raise ModelError(f"model '{name}' is neither in the local cache nor on the model hub: check the name, "
                         f"or pass a folder") from None
    except HfHubHTTPError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"model '{name}': the model hub refused it ({first})") from None
    except Exception:       # connection refused, DNS, timeout, proxy: whatever the HTTP client raises
        raise ModelError(f"model '{name}' is not in the local cache and the model hub is unreachable: "
                         f"{_offline_hint(name)}") from None


def load_pretrained(load: Callable[..., Any], spec: str | Path, hub: bool, **kwargs: Any) -> Any:
    """`load(spec, **kwargs)` (a `from_pretrained`); `hub`: `spec` is a hub name, read from the cache
    first and fetched only when the hub answers; else a folder, checked to be complete first."""
    if not hub:
        check_complete(spec)
        return load(str(spec), **kwargs)
    try:
        return load(str(spec), local_files_only=True, **kwargs)
    except OSError:          # not (wholly) in the cache
        check_hub(str(spec))
    return load(str(spec), **kwargs)
