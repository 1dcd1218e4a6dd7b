"""`PipelineConfig`: every setting of a pipeline, one typed object, each default defined here once.

    cfg = PipelineConfig(index="wiki", reader=ReaderSettings(model=["runs/reader/best"]))
    cfg = PipelineConfig.from_flat(index="wiki", k=5, retrieval_weight=1.0)   # the API's parameter names
    cfg.save("pipeline.yaml"); PipelineConfig.load("pipeline.yaml")           # YAML or JSON, by suffix
    odqa.Pipeline.from_config(cfg)

Each component owns its settings: `retriever` (mode, passages read, fusion, encoder, metadata filters), `reranker`
(a cross-encoder and its depth; no model = none), `reader` (model(s), runtime, retrieval weight,
particle rules, n-best), and `device`, where the models run (resolved once, by the pipeline).
The flat names (`k`, `rerank`, `reader_runtime`, ...) are the parameters of `Pipeline.from_index`
and of the CLI's options; `FLAT` maps each to its place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import Field, field_validator

from odqa.atomic import atomic_write_text
from odqa.config import Section
from odqa.errors import ConfigError
from odqa.retrieval.filters import parse_filters

# passages read per question and the weight of their retrieval score in span scores, chosen on the benchmark's
# 1,987 train questions with ko-reader (BENCHMARKS.md "Passages read and the retrieval weight": the fewest passages
# within 0.5 EM of the best setting)
DEFAULT_K = 2
DEFAULT_RETRIEVAL_WEIGHT = 2.0
RETRIEVAL_MODES = ("auto", "sparse", "dense", "hybrid")


class RetrieverSettings(Section):
    """How passages are retrieved: `mode` (auto | sparse | dense | hybrid), `k` passages read per question,
    the hybrid fusion (`alpha`, `fusion`; None: the index's own) and the dense `encoder` (None: the index's)."""
    mode: str = "auto"                     # auto (hybrid when the index has vectors, else sparse) | sparse | dense | hybrid
    k: int = DEFAULT_K                     # passages read per question
    alpha: Optional[float] = None          # hybrid: weight of the dense score (None: the index's hybrid.alpha)
    fusion: Optional[str] = None           # hybrid: minmax | zscore | rrf (None: the index's hybrid.method)
    encoder: Optional[str] = None          # dense encoder spec; must match the index's
    # metadata filters, all must hold (`source=wiki`, `year>=2000`, `lang in [ko, en]`); [] = every passage
    filters: list[str] = Field(default_factory=list)

    @field_validator("filters", mode="before")
    @classmethod
    def _filter_list(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            v = [v]
        if isinstance(v, dict):
            return parse_filters(v).texts()
        if isinstance(v, (list, tuple)):
            parse_filters([str(x) for x in v])        # a malformed filter: one line naming it
            return [str(x) for x in v]
        return v

    @field_validator("k")
    @classmethod
    def _at_least_one(cls, v: int) -> int:
        if v < 1:
            raise ValueError("k must be at least 1")
        return v


class RerankerSettings(Section):
    """The optional cross-encoder between retrieval and reading: `model` (an `odqa train reranker` folder;
    None: no reranking) and `depth`, the passages retrieved for it (0: max(20, k)), of which it keeps k."""
    model: Optional[str] = None            # cross-encoder folder (`odqa train reranker` OUT/best); None = no reranking
    depth: int = 0                         # passages retrieved for it, of which it keeps k (0: max(20, k))

    @field_validator("depth")
    @classmethod
    def _not_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("rerank must be at least 0")
        return v


class ReaderSettings(Section):
    """The reader: `model` (reader specs, soft-voted when several; empty: the shipped `ko-reader`), its
    `runtime` (torch | onnx | onnx-int8), `retrieval_weight`, `particles`, `n_best` and `min_probability`
    (below it an answer is marked not sure)."""
    model: list[str] = Field(default_factory=list)   # reader spec(s), soft-voted when several; [] = the default reader
    runtime: str = "torch"                 # where the span model runs: torch | onnx | onnx-int8
    retrieval_weight: float = DEFAULT_RETRIEVAL_WEIGHT   # of the passage's retrieval score in span scores
    particles: Optional[str] = None        # particle rules: a file, 'auto' (READER/particles.json) or 'none'
    n_best: int = 20                       # answers kept per question
    min_probability: float = 0.0           # below it the answer is marked "not sure" (the best guess kept); 0 = never

    @field_validator("model", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, (str, Path)):
            return [str(v)]
        return [str(x) for x in v] if isinstance(v, (list, tuple)) else v

    @field_validator("min_probability")
    @classmethod
    def _a_probability(cls, v: float) -> float:
        if not 0.0 <= v < 1.0:
            raise ValueError("min_probability must be at least 0 and below 1")
        return v


class PipelineConfig(Section):
    """Every setting of a pipeline, each with its one default: `index`, `index_dir`, `retriever`,
    `reranker`, `reader` and `device`. `from_flat` takes the flat parameter names of `Pipeline.from_index`;
    `save`/`load` write and read it as YAML or JSON (the CLI's `--config FILE`)."""
    index: Optional[str] = None            # the index searched; None = a reader alone (closed domain)
    index_dir: Optional[Path] = None       # folder holding indexes (None: $ODQA_INDEX_DIR or ./indexes)
    retriever: RetrieverSettings = Field(default_factory=RetrieverSettings)
    reranker: RerankerSettings = Field(default_factory=RerankerSettings)
    reader: ReaderSettings = Field(default_factory=ReaderSettings)
    device: str = "auto"                   # auto | cpu | cuda | cuda:N | mps, for the reader, reranker and query encoder

    @field_validator("reranker", "reader", "retriever", mode="before")
    @classmethod
    def _paths_as_text(cls, v: Any) -> Any:
        return {k: str(x) if isinstance(x, Path) else x for k, x in v.items()} if isinstance(v, dict) else v

    @classmethod
    def from_flat(cls, **flat: Any) -> "PipelineConfig":
        """A config from the API's parameter names (`k=5, reader_runtime="onnx"`; see FLAT)."""
        return cls().with_overrides(**flat)

    def with_overrides(self, **flat: Any) -> "PipelineConfig":
        """This config with the settings named by their parameter names (FLAT) replaced."""
        data = self.model_dump()
        for name, value in flat.items():
            if name not in FLAT:
                raise ConfigError(f"unknown pipeline setting '{name}' (known: {', '.join(FLAT)})")
            node = data
            *parents, leaf = FLAT[name]
            for p in parents:
                node = node[p]
            node[leaf] = str(value) if isinstance(value, Path) and leaf != "index_dir" else value
        return type(self)(**data)

    def flat(self) -> dict[str, Any]:
        """Every setting by its parameter name (the inverse of `from_flat`)."""
        data = self.model_dump()
        out = {}
        for name, place in FLAT.items():
            node = data
            for p in place:
                node = node[p]
            out[name] = node
        return out

    def save(self, path: str | Path) -> Path:
        """Written atomically as YAML (.yaml/.yml) or JSON (any other suffix)."""
        path = Path(path)
        data = self.model_dump(mode="json")
        text = (yaml.safe_dump(data, allow_unicode=True, sort_keys=False) if _is_yaml(path)
                else json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PipelineConfig":
        """Read a config `save` wrote (YAML or JSON by suffix); a bad file or field raises `ConfigError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the pipeline config ({e.strerror or e})") from None
        try:
            data = yaml.safe_load(text) if _is_yaml(path) else json.loads(text)
        except (yaml.YAMLError, ValueError) as e:
            raise ConfigError(f"{path}: not valid {'YAML' if _is_yaml(path) else 'JSON'}: "
                              f"{str(e).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a pipeline config is a mapping of settings")
        return cls(**data)


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


# parameter name (Pipeline.from_index, the CLI's options) -> place in PipelineConfig
FLAT: dict[str, tuple[str, ...]] = {
    "index": ("index",), "index_dir": ("index_dir",), "device": ("device",),
    "mode": ("retriever", "mode"), "k": ("retriever", "k"), "alpha": ("retriever", "alpha"),
    "fusion": ("retriever", "fusion"), "encoder": ("retriever", "encoder"), "filters": ("retriever", "filters"),
    "reranker": ("reranker", "model"), "rerank": ("reranker", "depth"),
    "reader": ("reader", "model"), "reader_runtime": ("reader", "runtime"),
    "retrieval_weight": ("reader", "retrieval_weight"), "particles": ("reader", "particles"),
    "n_best": ("reader", "n_best"), "min_probability": ("reader", "min_probability"),
}
