"""Typed configuration: dataclasses with defaults, loaded from YAML, overridden from the CLI.

`configs/default.yaml` documents every field; a test keeps it equal to these defaults.
Overrides use dotted keys: `bm25.k1=1.5`, `analyzer.name=kiwi`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from odqa.errors import ConfigError
from odqa.text.analyzers import DEFAULT_POS


@dataclass
class CorpusConfig:
    format: str = "auto"          # auto | wiki | jsonl | squad | txt
    chunk_size: int = 0           # characters per passage; 0 keeps documents whole
    chunk_overlap: int = 0        # characters shared by neighbouring chunks
    dedup: bool = True            # merge passages with identical text


@dataclass
class AnalyzerConfig:
    name: str = "mecab"           # mecab | kiwi | whitespace | char-ngram
    pos: list[str] = field(default_factory=lambda: list(DEFAULT_POS))  # POS tag prefixes kept
    workers: int = 0              # 0 = min(cores, 4)


@dataclass
class BM25Config:
    method: str = "atire"         # atire | robertson | lucene | bm25l | bm25+
    k1: float = 0.3               # chosen on KorQuAD train questions (BENCHMARKS.md); re-tune with --sweep
    b: float = 0.2
    delta: float = 0.5            # only for bm25l and bm25+


@dataclass
class DenseConfig:
    enabled: bool = False         # also build a dense (bi-encoder + FAISS) index
    encoder: str = "offline:multilingual-e5-small"   # backbone spec: offline:..., a folder, or a hub name
    max_length: int = 256         # tokens per passage (queries are truncated with a warning)
    window_stride: int = 128      # 0 = cut longer passages; N = windows of max_length tokens, N apart
    batch_size: int = 32          # sequences per forward pass (sorted by length)
    quantize: str = "none"        # none | int8 (torch dynamic int8) | onnx | onnx-int8 (ONNX Runtime; odqa[onnx])
    index: str = "flat"           # flat (exact inner product) | hnsw | ivf
    hnsw_m: int = 32              # graph degree for hnsw
    hnsw_ef_search: int = 128     # hnsw candidate list at search time (faiss's default 16 loses recall)
    ivf_nlist: int = 0            # lists for ivf; 0 = about 4*sqrt(passages)
    threads: int = 0              # torch / onnxruntime intra-op threads; 0 = the runtime's default


@dataclass
class HybridConfig:
    method: str = "zscore"        # minmax | zscore (weighted fusion of normalised scores) | rrf (reciprocal rank)
    alpha: float = 0.35           # weight of the dense score in minmax/zscore fusion (sparse gets 1 - alpha)
    depth: int = 100              # candidates taken from each retriever before fusing
    rrf_k: int = 60               # rank offset in RRF


@dataclass
class ElasticConfig:
    """The Elasticsearch backend (`backend: elasticsearch`); connection settings come from flags/env."""
    decompound_mode: str = "mixed"   # nori compounds: none | discard | mixed (compound and its parts)
    user_dictionary: str = ""        # local nori user dictionary file, sent inline; "" = none
    user_dictionary_path: str = ""   # or: a dictionary file already on every node (relative to its config dir)
    allow_fallback: bool = False     # without the nori plugin, use the cjk bigram analyzer instead of failing
    shards: int = 1                  # primary shards of the index
    replicas: int = 1                # replica shards (0 on a single node avoids a yellow cluster)
    bulk_size: int = 500             # passages per bulk request
    retries: int = 5                 # retries of a request answered 429/5xx or timed out, with backoff
    backoff: float = 1.0             # seconds before the first retry; doubles each time (at most 60)
    timeout: float = 60.0            # seconds to wait for one request
    num_candidates: int = 100        # kNN candidates per shard (at least k)
    fusion: str = "auto"             # hybrid rrf: auto (server RRF retriever when supported) | server | client


@dataclass
class IndexConfig:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    include_title: bool = True    # index "title\ntext" rather than text alone
    dense: DenseConfig = field(default_factory=DenseConfig)
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    backend: str = "local"        # local (in-process BM25 + FAISS, one folder) | elasticsearch
    elastic: ElasticConfig = field(default_factory=ElasticConfig)


def _coerce(value: Any, typ: Any, where: str) -> Any:
    if typ is bool:
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
        if isinstance(value, bool):
            return value
    elif typ in (int, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return typ(value)
        except (TypeError, ValueError):
            pass
    elif typ is str:
        return str(value)
    elif getattr(typ, "__origin__", None) is list:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if isinstance(value, list):
            return [str(v) for v in value]
    raise ConfigError(f"config field '{where}': expected {getattr(typ, '__name__', typ)}, got {value!r}")


def _fill(cls, data: dict, prefix: str = ""):
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'top'}' must be a mapping")
    hints = get_type_hints(cls)
    obj = cls()
    for key, value in data.items():
        if key not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"unknown config field '{prefix}{key}' (known: {known})")
        typ = hints[key]
        if dataclasses.is_dataclass(typ):
            setattr(obj, key, _fill(typ, value or {}, f"{prefix}{key}."))
        else:
            setattr(obj, key, _coerce(value, typ, prefix + key))
    return obj


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    data = dataclasses.asdict(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.field=value")
        key, value = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                raise ConfigError(f"unknown config field '{key}'")
            node = node[p]
        if parts[-1] not in node:
            raise ConfigError(f"unknown config field '{key}'")
        node[parts[-1]] = yaml.safe_load(value)
    return _fill(type(cfg), data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                cls: type = IndexConfig) -> Any:
    cfg = cls()
    if path:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{line}: malformed YAML") from None
        cfg = _fill(cls, data)
    return apply_overrides(cfg, overrides or [])


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def with_changes(cfg: Any, **changes: Any) -> Any:
    """A copy of config section `cfg` with `changes` applied (and checked like any other value)."""
    if dataclasses.is_dataclass(cfg):
        return dataclasses.replace(cfg, **changes)
    return type(cfg).model_validate({**cfg.model_dump(), **changes})
