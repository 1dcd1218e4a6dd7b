"""Settings read from the environment (`ODQA_*`), in one place.

Every environment variable odqa reads is a field here; modules ask `env()` instead of `os.environ`.
`env()` reads the environment afresh on each call (cheap), so a variable set at run time, or by a test,
takes effect at once. An empty or unreadable value counts as unset (the field's default), as a
hand-written `os.environ.get` with a fallback would read it. Variables of other programs that odqa passes on or honours (`XDG_CACHE_HOME`,
`HF_HUB_ETAG_TIMEOUT`, `RAY_ADDRESS`, `WORLD_SIZE`) are fields too, under their own names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, ValidatorFunctionWrapHandler, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _var(name: str):
    return Field(None, validation_alias=AliasChoices(name))


class EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ODQA_", extra="ignore", env_ignore_empty=True)

    quiet: bool = False                     # ODQA_QUIET=1: no progress bars or notes on stderr
    mmap: bool = True                       # ODQA_MMAP=0: read BM25 score arrays into memory instead of mapping them
    index_dir: Optional[Path] = None        # ODQA_INDEX_DIR: where indexes live (default ./indexes)
    cache: Optional[Path] = None            # ODQA_CACHE: converted backbones and rebuilt models (default ~/.cache/odqa)
    models_dir: Optional[Path] = None       # ODQA_MODELS_DIR: shipped models (default: the installed package's)
    api_key: Optional[str] = None           # ODQA_API_KEY: the key `odqa serve` requires
    es_url: Optional[str] = None            # ODQA_ES_URL and the other Elasticsearch connection settings
    es_api_key: Optional[str] = None
    es_user: Optional[str] = None
    es_password: Optional[str] = None
    es_ca: Optional[str] = None
    es_verify: Optional[bool] = None
    xdg_cache_home: Optional[Path] = _var("XDG_CACHE_HOME")
    hf_hub_etag_timeout: Optional[float] = _var("HF_HUB_ETAG_TIMEOUT")
    ray_address: Optional[str] = _var("RAY_ADDRESS")
    world_size: Optional[int] = _var("WORLD_SIZE")

    @field_validator("*", mode="wrap")
    @classmethod
    def _unreadable_is_unset(cls, value, handler: ValidatorFunctionWrapHandler, info: ValidationInfo):
        try:
            return handler(value)
        except ValidationError:
            return cls.model_fields[info.field_name].default


def env() -> EnvSettings:
    """The environment's settings now."""
    return EnvSettings()


def cache_root() -> Path:
    """odqa's cache folder: ``$ODQA_CACHE``, else ``$XDG_CACHE_HOME/odqa``, else ``~/.cache/odqa``."""
    settings = env()
    if settings.cache:
        return settings.cache.expanduser()
    base = settings.xdg_cache_home.expanduser() if settings.xdg_cache_home else Path.home() / ".cache"
    return base / "odqa"
