"""Micro-batching: concurrent requests with the same parameters answered by one batched call.

    batcher = MicroBatcher(run, max_size=16, max_wait_ms=10, executor=pool)
    result, batch_size, queued_s = await batcher.submit(key, question)

`run(key, items)` is called in `executor` with up to `max_size` items that share `key` (the request
parameters that change the computation), and returns one result per item, in order. A batch starts
when it is full or `max_wait_ms` after its first item arrived; with `enabled=False` every item runs
alone (`run(key, [item])`) at once. Items of different keys never share a batch.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


@dataclass
class _Pending:
    items: list = field(default_factory=list)
    futures: list = field(default_factory=list)
    arrived: list = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    def __init__(self, run: Callable[[Hashable, list], Sequence[Any]], max_size: int, max_wait_ms: float,
                 executor: Executor | None = None, enabled: bool = True,
                 on_batch: Callable[[int], None] | None = None):
        self.run, self.max_size, self.max_wait = run, max_size, max_wait_ms / 1000
        self.executor, self.enabled, self.on_batch = executor, enabled, on_batch
        self._pending: dict[Hashable, _Pending] = {}
        self._running: set[asyncio.Task] = set()     # held so that running batches are not garbage-collected

    async def submit(self, key: Hashable, item: Any) -> tuple[Any, int, float]:
        """The item's result, the size of the batch it ran in, and the seconds it waited for that batch."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        p = self._pending.setdefault(key, _Pending())
        p.items.append(item)
        p.futures.append(fut)
        p.arrived.append(time.perf_counter())
        if not self.enabled or len(p.items) >= self.max_size:
            self._flush(key)
        elif p.timer is None:
            p.timer = loop.call_later(self.max_wait, self._flush, key)
        return await fut

    def _flush(self, key: Hashable) -> None:
        p = self._pending.pop(key, None)
        if p is None:
            return
        if p.timer is not None:
            p.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run(key, p))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, key: Hashable, p: _Pending) -> None:
        started = time.perf_counter()
        if self.on_batch:
            self.on_batch(len(p.items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, key, p.items)
        except Exception as e:                       # every waiting request gets the error
            for f in p.futures:
                if not f.done():
                    f.set_exception(e)
            return
        for f, r, t in zip(p.futures, results, p.arrived):
            if not f.done():                         # a request that timed out is no longer waiting
                f.set_result((r, len(p.items), started - t))
