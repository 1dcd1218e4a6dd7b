"""`Index`: what every index backend gives a caller (passages, aliases, retrievers, its manifest).

Backends (`odqa.index.local`, `odqa.index.elastic.build`) subclass it and never import each
other; `odqa.index.indexing` picks one by the manifest's `backend` through a registry.

One loaded index may serve several threads: the retrievers and encoders it builds lazily are
built under a lock, once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odqa.config import BM25Config, HybridConfig
from odqa.errors import OdqaError

MODES = ("sparse", "dense", "hybrid")


@dataclass
class Index:
    name: str
    folder: Path
    manifest: dict
    passages: Any                   # list[Passage] locally; a lazy sequence on a remote backend
    aliases: Any                    # merged duplicate id -> kept id
    stale: list[str]
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False)
    device = "auto"                 # where the query encoder runs: the torch.device its loader resolved (not a field)

    @property
    def backend(self) -> str:
        return self.manifest.get("backend", "local")

    def canonical(self, pid: str) -> str:
        return self.aliases.get(pid, pid)

    def passage_ids(self) -> set[str]:
        """Ids of every passage (cheaper than iterating `passages` on a remote index)."""
        return {p.id for p in self.passages}

    def has_dense(self) -> bool:
        return bool(self.manifest.get("dense"))

    def default_mode(self) -> str:
        """`auto`: hybrid when the index has vectors, else sparse."""
        return "hybrid" if self.has_dense() else "sparse"

    def resolve_mode(self, mode: str | None) -> str:
        mode = mode or "auto"
        if mode == "auto":
            return self.default_mode()
        if mode not in MODES:
            raise OdqaError(f"unknown retrieval mode '{mode}' (choose from auto, {', '.join(MODES)})")
        return mode

    def hybrid_config(self, alpha: float | None = None, method: str | None = None) -> HybridConfig:
        """The fusion settings the index was built with (`hybrid.*`), with these overrides on top."""
        cfg = HybridConfig(**(self.manifest.get("hybrid") or {}))
        if alpha is not None:
            cfg.alpha = alpha
        if method is not None:
            cfg.method = method
        return cfg

    def bm25_config(self) -> BM25Config:
        """The BM25 settings the index was built with."""
        s = self.manifest["sparse"]
        return BM25Config(method=s["method"], k1=s["k1"], b=s["b"], delta=s["delta"])

    def cached(self, key, make):
        """`make()` once per key, under the index's lock (concurrent callers get the same object)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    # --- what a backend provides -------------------------------------------------------------------

    def analyzer(self):
        raise NotImplementedError

    @property
    def sparse(self):
        raise NotImplementedError

    def dense(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------------

    def query_encoder(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        """The index's dense encoder (cached); refuses an encoder other than the one the index was built with."""
        d = self.manifest.get("dense")
        if not d:
            raise OdqaError(f"index '{self.name}' has no dense part: add it with "
                            f"`odqa index CORPUS --name {self.name} --dense`")
        if encoder and encoder != d["encoder"]:
            from odqa.modeling.backbone import backbone_info
            from odqa.retrieval.dense import encoder_fingerprint
            if encoder_fingerprint(backbone_info(encoder).path) != d["encoder_sha256"]:
                raise OdqaError(f"index '{self.name}' was built with encoder '{d['encoder']}', not '{encoder}': "
                                f"use `encoder` {d['encoder']} or rebuild the index with `encoder` {encoder}")
        q = quantize or d["quantize"]

        def make():
            from odqa.retrieval.dense import DenseEncoder
            return DenseEncoder(d["encoder"], d["max_length"], quantize=q, threads=threads, device=self.device)
        return self.cached(("encoder", q, threads, self.device), make)

    def hybrid(self, cfg: HybridConfig, encoder: str | None = None):
        from odqa.retrieval.hybrid import HybridRetriever
        return HybridRetriever(self.sparse, self.dense(encoder), cfg)

    def retriever(self, mode: str = "sparse", hybrid: HybridConfig | None = None, encoder: str | None = None):
        mode = self.resolve_mode(mode)
        if mode == "sparse":
            return self.sparse
        if mode == "dense":
            return self.dense(encoder)
        return self.hybrid(hybrid or self.hybrid_config(), encoder)

