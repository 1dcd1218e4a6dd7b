"""The indexes a server answers from: each loaded once, on first use, with one pipeline config."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from odqa.api import OdqaError, Pipeline, PipelineConfig, list_indexes


class Catalog:
    def __init__(self, config: PipelineConfig | None = None, names: Sequence[str] = (),
                 index_dir: str | Path | None = None):
        """config: the pipeline settings of every index; names: the indexes served, the first the default
        (none: the config's index, else every index of the index folder, the default only when there is one)."""
        self.config = config or PipelineConfig()
        self.index_dir = index_dir if index_dir is not None else self.config.index_dir
        self.fixed = list(dict.fromkeys(names or ([self.config.index] if self.config.index else [])))
        self._pipelines: dict[str, Pipeline] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return self.fixed or list_indexes(self.index_dir)

    def default(self) -> str | None:
        names = self.names()
        return names[0] if self.fixed or len(names) == 1 else None

    def pipeline(self, name: str | None) -> Pipeline:
        """The pipeline of index `name` (None: the default index), loaded on first use; its reader loads on
        the first answer."""
        name = name or self.default()
        if name is None:
            raise OdqaError(f"`index` is needed: this server has {', '.join(self.names()) or 'no indexes'}")
        if name not in self.names():
            raise OdqaError(f"`index` '{name}' is not served here (served: {', '.join(self.names()) or 'none'})")
        with self._lock:
            if name not in self._pipelines:
                cfg = self.config.with_overrides(index=name, **({"index_dir": self.index_dir} if self.index_dir else {}))
                self._pipelines[name] = Pipeline.from_config(cfg, lazy_reader=True)
            return self._pipelines[name]

    def load(self) -> None:
        """Load every index named at start (a missing one fails now, not on the first call)."""
        for name in self.fixed:
            self.pipeline(name)
