"""/v1/ask in two micro-batched stages (`odqa.server.batching`), with admission over both.

    stages = AskStages(served, config, metrics)
    (result, pipeline), batch_size, queued_s = await stages.answer(name, mode, k, filters, question)

Retrieval batches questions with the same parameters by count (`max_batch_size`). Reading batches the questions
of one index by the reader's windows (`max_batch_windows`, counted once their passages are known), so each
reading batch is about the same work whatever the passages: a question over long passages is read with fewer
others, one over short ones with more.

Admission, before any work: a request is refused (`Overloaded`) when `max_queue` requests are already in either
stage, or when its estimated wait is past the deadline: the retrieval backlog, plus the reading backlog (the
windows queued for reading, and the windows expected of the questions still being retrieved, at the moving
average of windows per question), at the seconds per window of the reading batches so far. Once its passages
are known it is checked again, with its own windows and the seconds it has left: a request that would now be
read past its deadline is refused then (503), not left to time out (504).
"""

from __future__ import annotations

import time

from odqa.server.batching import MicroBatcher, Overloaded
from odqa.server.memory import MemoryTrimmer


class AskStages:
    def __init__(self, served, config, metrics, executor=None):
        self.served, self.config, self.metrics = served, config, metrics
        self.windows_per_question = 1.0             # moving average, for the questions not yet retrieved
        self.trim = MemoryTrimmer()                  # a reading batch's freed activations back to the system
        self.finder = MicroBatcher(self._find, config.max_batch_size, config.max_wait_ms, config.workers,
                                   executor=executor, enabled=config.batching)
        self.reader = MicroBatcher(self._read, config.max_batch_size, config.max_wait_ms, config.workers,
                                   executor=executor, enabled=config.batching, on_batch=metrics.batch_size.observe,
                                   max_cost=config.max_batch_windows)

    def set_executor(self, executor) -> None:
        self.finder.executor = self.reader.executor = executor

    def _find(self, key, questions):                   # runs in a worker thread
        name, mode, k, filters = key
        p = self.served.pipelines[name].in_mode(mode)
        t0 = time.perf_counter()
        hits, timings = p.passages_for(questions, k, None if filters is None else list(filters))
        self.metrics.stage.labels("retrieve_batch").observe(time.perf_counter() - t0)
        return [(h, timings, p.count_windows(q, h)) for q, h in zip(questions, hits)]

    def _read(self, key, items):                       # runs in a worker thread
        name, mode = key
        p = self.served.pipelines[name].in_mode(mode)
        t0 = time.perf_counter()
        results = p.answers_from([q for q, _, _ in items], [h for _, h, _ in items], [t for _, _, t in items])
        self.metrics.stage.labels("read_batch").observe(time.perf_counter() - t0)
        self.trim()
        return [(r, p) for r in results]

    @property
    def pending(self) -> int:
        return self.finder.pending + self.reader.pending

    def _read_backlog_s(self) -> float:
        """Seconds of reading ahead of a new request: the windows queued, and those expected of the questions
        still being retrieved (its own included)."""
        return self.reader.expected_wait((self.finder.pending + 1) * self.windows_per_question)

    def expected_wait(self) -> float:
        """Seconds a new request would wait for the work already taken (0 until a batch has been read)."""
        return self.finder.expected_wait() + self._read_backlog_s()

    def admit(self) -> None:
        if self.pending >= self.config.max_queue:
            raise Overloaded(self.pending, max(self.expected_wait(), 1.0))
        self.finder.admit(ahead_s=self._read_backlog_s(), deadline_s=self.config.timeout_s)

    async def answer(self, name: str, mode: str, k: int, filters, question: str):
        """(result, pipeline), the size of the reading batch it was read in, and the seconds it queued in both
        stages; `Overloaded` at once when it cannot be answered in time."""
        self.admit()
        t0 = time.perf_counter()
        (hits, timings, windows), _, queued = await self.finder.submit((name, mode, k, filters), question)
        cost = max(windows, 1)
        self.windows_per_question = 0.9 * self.windows_per_question + 0.1 * cost
        self.reader.admit(cost, deadline_s=self.config.timeout_s - (time.perf_counter() - t0))
        (r, p), size, queued_read = await self.reader.submit((name, mode), (question, hits, timings), cost)
        return (r, p), size, queued + queued_read
