"""The pipeline an integration serves: one given, or loaded once from an index name and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odqa.api import Pipeline


def pipeline_of(pipeline: Pipeline | str, index_dir: str | Path | None = None, reader: Any = None,
                lazy_reader: bool = True, **settings: Any) -> Pipeline:
    """`pipeline` itself, or (an index name) `Pipeline.from_index(name, reader, **settings)`: the reader is
    loaded on the first answer (`lazy_reader`), so a retriever alone never loads it."""
    if isinstance(pipeline, Pipeline):
        return pipeline
    return Pipeline.from_index(pipeline, reader, lazy_reader=lazy_reader,
                               **({"index_dir": index_dir} if index_dir is not None else {}), **settings)


def in_mode(pipeline: Pipeline, mode: str | None) -> Pipeline:
    """The pipeline retrieving in `mode` (auto | sparse | dense | hybrid); None keeps the pipeline's own mode."""
    return pipeline if mode is None else pipeline.in_mode(mode)
