"""`ServeConfig`: every setting of `odqa serve`: the served pipelines' `PipelineConfig` and the server's own
(the CLI's flags map onto its fields one to one; the pipeline's settings may also be given by their parameter
names, `ServeConfig(indexes=["demo"], k=3, reader=["none"])`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from odqa.api import FLAT, OdqaError, PipelineConfig, Section

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeConfig(Section):
    indexes: list[str] = Field(..., min_length=1)   # the served indexes, fixed at start (the first is the default)
    # the settings of every served pipeline (its `index` is each served one); the retriever's mode and k are
    # the defaults of requests that do not say
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: Optional[str] = Field(None, min_length=1)  # required on every request when set
    no_auth: bool = False                           # serve a non-loopback address without a key, on purpose
    cors_origins: list[str] = Field(default_factory=list)   # [] = no CORS headers
    max_k: int = Field(100, ge=1)
    top: int = Field(3, ge=1)                       # answers returned when a request does not say
    max_top: int = Field(20, ge=1)
    batching: bool = True                           # gather concurrent /v1/ask requests into one ask_batch
    max_batch_size: int = Field(16, ge=1)           # questions per retrieval batch, and per reading batch at most
    max_batch_windows: int = Field(64, ge=1)        # reader windows per reading batch (a longer question reads alone)
    max_wait_ms: float = Field(10.0, ge=0)          # how long the first request of a batch waits for others
    workers: int = Field(2, ge=1)                   # threads running batches (and retrievals) at once
    max_question_chars: int = Field(1000, ge=1)
    max_body_bytes: int = Field(65536, ge=256)
    timeout_s: float = Field(30.0, gt=0)            # per request; past it the answer is 504
    max_queue: int = Field(256, ge=1)               # /v1/ask requests waiting or running; past it 503 at once

    @model_validator(mode="before")
    @classmethod
    def _pipeline_settings_by_name(cls, data: Any) -> Any:
        """Pipeline settings given by their parameter names (k, mode, reader, index_dir, ...) go into `pipeline`."""
        if not isinstance(data, dict) or not any(k in FLAT for k in data):
            return data
        data = dict(data)
        flat = {k: data.pop(k) for k in list(data) if k in FLAT}
        base = data.get("pipeline") or PipelineConfig()
        data["pipeline"] = (base if isinstance(base, PipelineConfig) else PipelineConfig(**base)).with_overrides(**flat)
        return data

    @property
    def index_dir(self) -> Optional[Path]:
        return self.pipeline.index_dir

    @property
    def k(self) -> int:
        return self.pipeline.retriever.k

    @property
    def mode(self) -> str:
        return self.pipeline.retriever.mode

    @field_validator("indexes")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _defaults_within_limits(self):
        if self.k > self.max_k or self.top > self.max_top:
            raise ValueError(f"k ({self.k}) and top ({self.top}) must not exceed max_k ({self.max_k}) and "
                             f"max_top ({self.max_top})")
        return self

    def check_bind(self) -> None:
        """Refuse to serve a non-loopback address without a key unless `no_auth` says so."""
        if not is_loopback(self.host) and not self.api_key and not self.no_auth:
            raise OdqaError(f"refusing to serve on {self.host} without an API key: give `api_key` KEY "
                            f"(or set ODQA_API_KEY), or `no_auth` to serve it to anyone who can reach it")
