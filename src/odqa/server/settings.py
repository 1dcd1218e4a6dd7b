"""`ServeConfig`: every setting of `odqa serve` (the CLI's flags map onto its fields one to one)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from odqa.api.readers import DEFAULT_K
from odqa.config import Section
from odqa.errors import OdqaError

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
    index_dir: Optional[Path] = None                # folder holding them (default $ODQA_INDEX_DIR or ./indexes)
    reader: list[str] = Field(default_factory=list) # reader spec(s) as `odqa ask --reader`; [] = the default reader
    reader_runtime: Literal["torch", "onnx", "onnx-int8"] = "torch"   # where the reader's span model runs
    mode: Literal["auto", "sparse", "dense", "hybrid"] = "auto"   # default retrieval mode of requests
    reranker: Optional[Path] = None                 # cross-encoder folder (odqa train reranker OUT/best); None = none
    rerank: int = Field(0, ge=0)                    # passages retrieved for it, of which it keeps k (0: 20)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: Optional[str] = Field(None, min_length=1)  # required on every request when set
    no_auth: bool = False                           # serve a non-loopback address without a key, on purpose
    cors_origins: list[str] = Field(default_factory=list)   # [] = no CORS headers
    k: int = Field(DEFAULT_K, ge=1)                 # passages read when a request does not say
    max_k: int = Field(100, ge=1)
    top: int = Field(3, ge=1)                       # answers returned when a request does not say
    max_top: int = Field(20, ge=1)
    batching: bool = True                           # gather concurrent /v1/ask requests into one ask_batch
    max_batch_size: int = Field(16, ge=1)
    max_wait_ms: float = Field(10.0, ge=0)          # how long the first request of a batch waits for others
    workers: int = Field(2, ge=1)                   # threads running batches (and retrievals) at once
    max_question_chars: int = Field(1000, ge=1)
    max_body_bytes: int = Field(65536, ge=256)
    timeout_s: float = Field(30.0, gt=0)            # per request; past it the answer is 504

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
            raise OdqaError(f"refusing to serve on {self.host} without an API key: give --api-key KEY "
                            f"(or set ODQA_API_KEY), or --no-auth to serve it to anyone who can reach it")
