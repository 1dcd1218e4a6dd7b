"""Per-stage wall-clock seconds, collected across layers without passing a dict through every signature.

    with collect() as seconds:            # the caller opens a collection (Pipeline.ask_batch does)
        retriever.search(queries, k)      # code inside marks its stages: with stage("sparse_search"): ...
    seconds                               # {"query_analysis": 0.004, "sparse_search": 0.011, ...}

A stage entered twice in one collection adds up. Outside a collection `stage` costs one context-variable
lookup and records nothing, so index building and other callers of the same code pay nothing. Each
thread (and asyncio task) sees its own collection, so concurrent asks never mix their figures.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

# the stages of one ask, in the order `QAResult.timings` lists them (docs/reference/json-output.md)
STAGES = ("query_analysis", "query_encoding", "sparse_search", "dense_search", "fusion", "rerank",
          "read_tokenize", "read_model", "read_postprocess")

_current: ContextVar[dict[str, float] | None] = ContextVar("odqa_stage_seconds", default=None)


@contextmanager
def collect() -> Iterator[dict[str, float]]:
    """A fresh collection for the code run inside; yields the dict the stages add their seconds to."""
    seconds: dict[str, float] = {}
    token = _current.set(seconds)
    try:
        yield seconds
    finally:
        _current.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the seconds spent inside to stage `name` of the open collection (if any)."""
    seconds = _current.get()
    if seconds is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0


def ordered(seconds: dict[str, float]) -> dict[str, float]:
    """The stages in `STAGES` order (any other names after them, as recorded)."""
    known = {s: seconds[s] for s in STAGES if s in seconds}
    return {**known, **{s: v for s, v in seconds.items() if s not in known}}
