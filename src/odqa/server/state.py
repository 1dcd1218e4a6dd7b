"""The served pipelines: a fixed set of named indexes, loaded once (in a background thread when the app
is given a loader), looked up by name only (a request's index name never reaches the filesystem)."""

from __future__ import annotations

import threading
import time
from typing import Callable, Mapping, Union

from odqa.server.errors import ApiError, log

Pipelines = Mapping[str, object]                  # index name -> odqa.api.Pipeline (or an object like it)
Source = Union[Pipelines, Callable[[], Pipelines]]


def index_modes(pipeline) -> list[str]:
    """The retrieval modes a pipeline's index can serve."""
    return ["sparse", "dense", "hybrid"] if pipeline.index.has_dense() else ["sparse"]


class Served:
    def __init__(self, source: Source, names: list[str]):
        self.names, self.status, self.error = list(names), "loading", None
        self.pipelines: dict[str, object] = {}
        self.load_seconds: float | None = None
        self._loader = source if callable(source) else None
        if self._loader is None:
            self._set(source, 0.0)

    def _set(self, pipelines: Pipelines, seconds: float) -> None:
        missing = [n for n in self.names if n not in pipelines]
        if missing:
            raise ValueError(f"no pipeline for the served index(es) {', '.join(missing)}")
        self.pipelines = {n: pipelines[n] for n in self.names}
        self.load_seconds, self.status = seconds, "ready"

    def load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._set(self._loader(), time.perf_counter() - t0)
            log.warning("ready: serving %s (loaded in %.1f s)", ", ".join(self.names), self.load_seconds)
        except Exception as e:                          # health reports it; requests get 503
            self.status, self.error = "failed", str(e).splitlines()[0] if str(e) else type(e).__name__
            log.exception("loading the served indexes failed")

    def start(self) -> None:
        """Load in a background thread (the server answers /v1/health with 'loading' meanwhile)."""
        if self._loader is not None and self.status == "loading":
            threading.Thread(target=self.load, name="odqa-load", daemon=True).start()

    def get(self, name: str | None) -> tuple[str, object]:
        if self.status != "ready":
            raise ApiError(503, "the server is still loading its indexes and models: try again in a moment"
                           if self.status == "loading" else f"the server could not load its indexes: {self.error}",
                           {"Retry-After": "5"} if self.status == "loading" else None)
        name = name or self.names[0]
        if name not in self.pipelines:
            raise ApiError(404, f"no index '{name}' is served here (served: {', '.join(self.names)})")
        return name, self.pipelines[name]
