"""Typed configuration: validated models with defaults, loaded from YAML, overridden from the CLI.

Index configs are pydantic models: enums are `Literal`s, ranges are checked, unknown fields are
refused, and every value is checked when the config is loaded, overridden or assigned, before any
work starts (one `ConfigError` line naming the field). Task configs (`odqa.training.TrainConfig`,
the reader, retriever, relation and pretraining configs) are `Section`s too and load through the
same functions.

`configs/default.yaml` documents every field; a test keeps it equal to these defaults.
Overrides use dotted keys: `bm25.k1=1.5`, `analyzer.name=kiwi`.
"""

from __future__ import annotations

import contextvars
import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from odqa.corpus import Fields, codec
from odqa.errors import ConfigError
from odqa.text.analyzers import DEFAULT_POS


_VALIDATING: contextvars.ContextVar[bool] = contextvars.ContextVar("odqa_config_validating", default=False)


class Section(BaseModel):
    """A config section: unknown fields refused, values checked when set as when loaded; a bad value
    raises ConfigError (one line naming the field), also from Python (`BM25Config(k1=-1)`)."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    # keys of an older layout -> their dotted place now (`lr` -> `train.lr`), accepted when loading,
    # constructing and overriding (`--set lr=...`)
    renamed: ClassVar[dict[str, str]] = {}

    def __init__(self, **data: Any):
        if _VALIDATING.get():                  # a section inside a section: the outer call reports it
            super().__init__(**data)
            return
        token = _VALIDATING.set(True)
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise _config_error(e, type(self)) from None
        finally:
            _VALIDATING.reset(token)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as e:
            raise _config_error(e) from None

    @model_validator(mode="before")
    @classmethod
    def _older_layout(cls, data: Any) -> Any:
        if cls.renamed and isinstance(data, dict) and any(k in data for k in cls.renamed):
            return _move_renamed(data, cls.renamed)
        return data


class CorpusConfig(Section):
    format: Literal["auto", "wiki", "jsonl", "squad", "txt", "parquet", "csv", "tsv", "datasets"] = "auto"
    chunk_size: int = Field(0, ge=0)          # characters per passage; 0 keeps documents whole
    chunk_overlap: int = Field(0, ge=0)       # characters shared by neighbouring chunks
    dedup: bool = True                        # merge passages with identical text
    encoding: str | None = None               # the corpus files' text encoding (e.g. cp949); None = UTF-8
    # which record fields (JSONL keys, table columns) make a passage; None = id|doc_id|document_id, title,
    # text|contents|content; metadata: the fields kept for filters (None = every other field, [] = none)
    id_field: Optional[str] = None
    title_field: Optional[str] = None
    text_field: Optional[str] = None
    metadata_fields: Optional[list[str]] = None

    @field_validator("metadata_fields", mode="before")
    @classmethod
    def _comma_fields(cls, v):
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v

    def fields(self) -> Fields:
        """The record fields a corpus reader takes."""
        return Fields(self.id_field, self.title_field, self.text_field,
                      None if self.metadata_fields is None else tuple(self.metadata_fields))

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v):
        try:
            codec(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if self.chunk_size and self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"corpus.chunk_overlap ({self.chunk_overlap}) must be below corpus.chunk_size "
                             f"({self.chunk_size})")
        return self


class AnalyzerConfig(Section):
    name: Literal["mecab", "kiwi", "whitespace", "char-ngram"] = "mecab"
    pos: list[str] = Field(default_factory=lambda: list(DEFAULT_POS))  # POS tag prefixes kept
    workers: int = Field(0, ge=0)             # 0 = min(cores, 4)
    # mecab only: also index the parts of compound/inflected words (mixed: parts and whole, as nori's
    # `mixed`; discard: parts alone); None = the analyzer's default (discard, chosen on train questions)
    decompound: Optional[Literal["none", "mixed", "discard"]] = None

    @field_validator("pos", mode="before")
    @classmethod
    def _comma_list(cls, v):
        return [x for x in v.split(",") if x] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _decompound_needs_mecab(self):
        if self.decompound not in (None, "none") and self.name != "mecab":
            raise ValueError(f"analyzer.decompound {self.decompound} needs analyzer.name mecab (analyzer "
                             f"'{self.name}' reports no compound parts)")
        return self


class BM25Config(Section):
    method: Literal["atire", "robertson", "lucene", "bm25l", "bm25+"] = "atire"
    k1: float = Field(0.3, gt=0)              # chosen on KorQuAD train questions (BENCHMARKS.md); re-tune with --sweep
    b: float = Field(0.1, ge=0, le=1)           # with decompound discard (0.2 before it; BENCHMARKS.md)
    delta: float = Field(0.5, ge=0)           # only for bm25l and bm25+


class DenseConfig(Section):
    enabled: Optional[bool] = None            # build a dense (bi-encoder + FAISS) index; None: keep the index's own
    encoder: str = Field("offline:multilingual-e5-small", min_length=1)  # offline:..., a folder, or a hub name
    max_length: int = Field(256, ge=8, le=8192)   # tokens per passage (queries are truncated with a warning)
    window_stride: int = Field(128, ge=0)     # 0 = cut longer passages; N = windows of max_length tokens, N apart
    batch_size: int = Field(32, ge=1)         # sequences per forward pass (sorted by length)
    quantize: Literal["none", "int8", "onnx", "onnx-int8"] = "none"
    index: Literal["flat", "hnsw", "ivf", "ivfpq"] = "flat"
    hnsw_m: int = Field(32, ge=2)             # graph degree for hnsw
    hnsw_ef_search: int = Field(128, ge=1)    # hnsw candidate list at search time (faiss's default 16 loses recall)
    ivf_nlist: int = Field(0, ge=0)           # lists for ivf and ivfpq; 0 = about 4*sqrt(passages)
    ivf_nprobe: int = Field(0, ge=0)          # lists searched per query (ivf, ivfpq); 0 = nlist/8
    pq_m: int = Field(0, ge=0)                # ivfpq: sub-vectors of 8 bits (bytes a vector); 0 = dim/8
    threads: int = Field(0, ge=0)             # onnxruntime intra-op threads; 0 = the runtime's default


class HybridConfig(Section):
    method: Literal["minmax", "zscore", "rrf"] = "zscore"
    alpha: float = Field(0.35, ge=0, le=1)    # weight of the dense score in minmax/zscore fusion
    depth: int = Field(100, ge=1)             # candidates taken from each retriever before fusing
    rrf_k: int = Field(60, ge=1)              # rank offset in RRF


class ElasticConfig(Section):
    """The Elasticsearch backend (`backend: elasticsearch`); connection settings come from flags/env."""
    decompound_mode: Literal["none", "discard", "mixed"] = "mixed"
    user_dictionary: str = ""        # local nori user dictionary file, sent inline; "" = none
    user_dictionary_path: str = ""   # or: a dictionary file already on every node (relative to its config dir)
    allow_fallback: bool = False     # without the nori plugin, use the cjk bigram analyzer instead of failing
    shards: int = Field(1, ge=1)
    replicas: int = Field(1, ge=0)
    bulk_size: int = Field(500, ge=1)
    retries: int = Field(5, ge=0)
    backoff: float = Field(1.0, ge=0)
    timeout: float = Field(60.0, gt=0)
    num_candidates: int = Field(100, ge=1)
    fusion: Literal["auto", "server", "client"] = "auto"


class IndexConfig(Section):
    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    analyzer: AnalyzerConfig = Field(default_factory=AnalyzerConfig)
    bm25: BM25Config = Field(default_factory=BM25Config)
    include_title: bool = True    # index "title\ntext" rather than text alone
    dense: DenseConfig = Field(default_factory=DenseConfig)
    hybrid: HybridConfig = Field(default_factory=HybridConfig)   # search-time fusion defaults of the index
    backend: Literal["local", "elasticsearch"] = "local"
    elastic: ElasticConfig = Field(default_factory=ElasticConfig)


def _model_at(cls: type, loc: tuple) -> type | None:
    """The model class of the section at `loc` (a path of field names) inside `cls`, if any."""
    for part in loc:
        field = getattr(cls, "model_fields", {}).get(part) if isinstance(part, str) else None
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        cls = ann
    return cls


def _config_error(e: ValidationError, cls: type | None = None) -> ConfigError:
    err = e.errors()[0]
    loc = tuple(err.get("loc", ()))
    where = ".".join(str(x) for x in loc) or "config"
    if err.get("type") in ("extra_forbidden", "unexpected_keyword_argument"):
        parent = _model_at(cls, loc[:-1]) if cls is not None else None
        known = f" (known: {', '.join(parent.model_fields)})" if parent is not None else ""
        return ConfigError(f"unknown config field '{where}'{known}")
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, (dict, BaseModel)) else f", got {got!r}"
    return ConfigError(f"config field '{where}': {msg[0].lower() + msg[1:] if msg else msg}{shown}")


def validate_config(cls: type, data: dict) -> Any:
    """`cls` from a mapping, checked; one ConfigError line naming the first bad field."""
    token = _VALIDATING.set(True)
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise _config_error(e, cls) from None
    finally:
        _VALIDATING.reset(token)


def _move_renamed(data: dict, renamed: dict[str, str]) -> dict:
    """A mapping in a section's older layout (`renamed`: old key -> new dotted key) in the current one."""
    data = dict(data)
    for old, new in renamed.items():
        if old not in data:
            continue
        value = data.pop(old)
        node, parts = data, new.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            child = child.model_dump() if isinstance(child, BaseModel) else dict(child or {})
            node[part] = child
            node = child
        if parts[-1] in node:
            raise ConfigError(f"config field '{old}' is the older name of '{new}': give one of them")
        node[parts[-1]] = value
    return data


def _set_dotted(data: dict, item: str, renamed: dict[str, str]) -> None:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like section.field=value")
    key, value = item.split("=", 1)
    key = renamed.get(key.strip(), key.strip())
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config field '{key}'")
        node = node[part]
    if parts[-1] not in node:
        known = ", ".join(node)
        raise ConfigError(f"unknown config field '{key}' (known: {known})")
    try:
        node[parts[-1]] = yaml.safe_load(value)
    except yaml.YAMLError:
        node[parts[-1]] = value


def _check_model_class(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise TypeError(f"{cls!r} is not a config model (a pydantic model such as odqa.config.Section)")


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """`cfg` with dotted `section.field=value` overrides (values parsed as YAML), checked."""
    _check_model_class(type(cfg))
    data = to_dict(cfg)
    renamed = getattr(type(cfg), "renamed", {})
    for item in overrides:
        _set_dotted(data, item, renamed)
    return validate_config(type(cfg), data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                cls: type = IndexConfig) -> Any:
    """`cls` from a YAML file (or its defaults), with overrides; every value checked before any work starts."""
    _check_model_class(cls)
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
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text at byte {e.start}; save the config as UTF-8") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file is a mapping of sections")
        cfg = validate_config(cls, data)
    return apply_overrides(cfg, overrides or [])


def to_dict(cfg: Any) -> dict:
    """A config (or a dataclass) as plain nested dicts."""
    return cfg.model_dump() if isinstance(cfg, BaseModel) else dataclasses.asdict(cfg)


def with_changes(cfg: Any, **changes: Any) -> Any:
    """A copy of config section `cfg` with `changes` applied (and checked like any other value)."""
    if dataclasses.is_dataclass(cfg):
        return dataclasses.replace(cfg, **changes)
    return validate_config(type(cfg), {**dict(cfg), **changes})
