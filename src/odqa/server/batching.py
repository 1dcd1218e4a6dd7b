"""Micro-batching: concurrent requests with the same parameters answered by one batched call.

    batcher = MicroBatcher(run, max_size=16, max_wait_ms=10, concurrency=2, executor=pool)
    result, batch_size, queued_s = await batcher.submit(key, question)

`run(key, items)` is called in `executor` with up to `max_size` items that share `key` (the request
parameters that change the computation) and returns one result per item, in order. A batch is due
when it is full or `max_wait_ms` after its first item arrived; at most `concurrency` batches run at
once, and a due batch that waits for a free slot keeps taking items until it is full, so under load
batches grow instead of queueing. With `enabled=False` every item is a batch of its own. Items of
different keys never share a batch.

Cost: `submit(key, item, cost)` gives an item's cost (the reader's windows of a question); a batch is also full
once its items' costs reach `max_cost`, so a batch holds as much work, not as many items, whatever each costs (an
item costing `max_cost` or more runs alone). Without costs every item costs 1.

Admission: an item is refused at once (`Overloaded`, with the seconds after which to retry) when
`max_pending` items are already waiting or running, or when the wait it would have, estimated from the
seconds per unit of cost of the batches run so far (a moving average, with a margin) and the cost already
taken, is past `deadline_s`. So a burst beyond capacity is told "not now" in milliseconds instead of waiting
for its deadline and failing there.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence


MARGIN = 1.25    # an estimate this much over the deadline is refused: batch times vary, a refusal is cheap


class Overloaded(Exception):
    """The batcher cannot take another item now; `retry_after`: seconds after which it likely can."""

    def __init__(self, pending: int, wait_s: float):
        self.pending, self.wait_s = pending, wait_s
        self.retry_after = max(1, math.ceil(wait_s))
        super().__init__(f"{pending} requests are waiting or running (about {wait_s:.1f} s of work)")


@dataclass(eq=False)
class _Batch:
    key: Hashable
    items: list = field(default_factory=list)
    futures: list = field(default_factory=list)
    arrived: list = field(default_factory=list)
    costs: list = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    due: bool = False


class MicroBatcher:
    def __init__(self, run: Callable[[Hashable, list], Sequence[Any]], max_size: int, max_wait_ms: float,
                 concurrency: int = 1, executor: Executor | None = None, enabled: bool = True,
                 on_batch: Callable[[int], None] | None = None, max_pending: int | None = None,
                 deadline_s: float | None = None, max_cost: float | None = None):
        self.run, self.max_size, self.max_wait = run, max_size, max_wait_ms / 1000
        self.concurrency, self.executor, self.enabled, self.on_batch = concurrency, executor, enabled, on_batch
        self.max_pending, self.deadline_s, self.max_cost = max_pending, deadline_s, max_cost
        self.pending = 0                             # items submitted and not yet answered (or given up)
        self.pending_cost = 0.0                      # their costs
        self.unit_seconds: float | None = None       # moving average of a batch's seconds per unit of cost
        self._open: dict[Hashable, _Batch] = {}      # taking items
        self._due: deque[_Batch] = deque()           # waiting for a slot, oldest first (may still be open)
        self._running: set[asyncio.Task] = set()     # held so that running batches are not garbage-collected

    async def submit(self, key: Hashable, item: Any, cost: float = 1.0) -> tuple[Any, int, float]:
        """The item's result, the size of the batch it ran in, and the seconds it waited for that batch;
        `Overloaded` at once when it cannot be answered in time (see the module's doc)."""
        self.admit(cost)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.pending += 1
        self.pending_cost += cost
        fut.add_done_callback(lambda _f: self._answered(cost))
        b = self._open.get(key) if self.enabled else None
        if b is not None and self.max_cost is not None and b.items and sum(b.costs) + cost > self.max_cost:
            del self._open[key]                      # this item would overfill it: it goes as it is
            self._make_due(b)
            b = None
        if b is None:
            b = self._open[key] = _Batch(key)
        b.items.append(item)
        b.futures.append(fut)
        b.arrived.append(time.perf_counter())
        b.costs.append(cost)
        full = len(b.items) >= self.max_size or (self.max_cost is not None and sum(b.costs) >= self.max_cost)
        if not self.enabled or full:
            del self._open[key]                      # full: takes no more items
            self._make_due(b)
        elif b.timer is None and not b.due:
            b.timer = loop.call_later(self.max_wait, self._make_due, b)
        return await fut

    def expected_wait(self, cost: float = 1.0) -> float:
        """Seconds until a new item of `cost` would be answered, from the work already taken (0 before any batch
        ran)."""
        if self.unit_seconds is None:
            return 0.0
        return (self.pending_cost + cost) * self.unit_seconds / self.concurrency

    def admit(self, cost: float = 1.0, ahead_s: float = 0.0, deadline_s: float | None = None) -> None:
        """Raise `Overloaded` when an item of `cost` cannot be taken now; `ahead_s`: seconds of work it will
        also wait for elsewhere (a later stage's backlog); `deadline_s`: the seconds it has left, when not the
        batcher's own `deadline_s`."""
        wait = self.expected_wait(cost) + ahead_s
        deadline = self.deadline_s if deadline_s is None else deadline_s
        if self.max_pending is not None and self.pending >= self.max_pending:
            raise Overloaded(self.pending, max(wait, self.unit_seconds or 1.0))
        if deadline is not None and wait * MARGIN > deadline:
            raise Overloaded(self.pending, max(wait - deadline, wait * MARGIN - deadline))

    def _answered(self, cost: float) -> None:
        self.pending -= 1
        self.pending_cost -= cost

    def _make_due(self, b: _Batch) -> None:
        if b.timer is not None:
            b.timer.cancel()
        if not b.due:
            b.due = True
            self._due.append(b)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._due and len(self._running) < self.concurrency:
            b = self._due.popleft()
            if self._open.get(b.key) is b:
                del self._open[b.key]
            task = asyncio.get_running_loop().create_task(self._run(b))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._dispatch()

    async def _run(self, b: _Batch) -> None:
        waiting = [(i, f, t, c) for i, f, t, c in zip(b.items, b.futures, b.arrived, b.costs) if not f.done()]
        if not waiting:                              # every request of it timed out meanwhile
            return
        items, futures, arrived, costs = map(list, zip(*waiting))
        started = time.perf_counter()
        if self.on_batch:
            self.on_batch(len(items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, b.key, items)
        except Exception as e:                       # every waiting request gets the error
            for f in futures:
                if not f.done():
                    f.set_exception(e)
            return
        per_unit = (time.perf_counter() - started) / max(sum(costs), 1e-9)
        self.unit_seconds = per_unit if self.unit_seconds is None else 0.7 * self.unit_seconds + 0.3 * per_unit
        for f, r, t in zip(futures, results, arrived):
            if not f.done():                         # a request that timed out is no longer waiting
                f.set_result((r, len(items), started - t))
