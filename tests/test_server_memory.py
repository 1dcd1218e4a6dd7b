"""The server hands memory freed by reading batches back to the system, at most once per interval."""

import sys

import pytest

from odqa.server.memory import MemoryTrimmer, _glibc_trim


def test_the_trimmer_trims_at_most_once_per_interval(monkeypatch):
    calls = []
    clock = [100.0]
    monkeypatch.setattr("odqa.server.memory.time.monotonic", lambda: clock[0])
    trimmer = MemoryTrimmer(every_s=1.0, trim=calls.append)
    assert trimmer() and calls == [0]
    clock[0] += 0.5
    assert not trimmer() and calls == [0]              # too soon
    clock[0] += 0.6
    assert trimmer() and calls == [0, 0]


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr("odqa.server.memory._glibc_trim", lambda: None)
    assert MemoryTrimmer()() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is a Linux call")
def test_glibc_trim_is_found_and_callable_on_linux():
    trim = _glibc_trim()
    assert trim is not None and trim(0) in (0, 1)


def test_reading_batches_trim_memory(monkeypatch):
    import asyncio

    from tests.serving import FakePipeline
    from tests.test_server import _app, _concurrently
    trims = []
    monkeypatch.setattr("odqa.server.answering.MemoryTrimmer.__call__", lambda self: trims.append(1) or True)
    rs = asyncio.run(_concurrently(_app(FakePipeline(), max_batch_size=2, max_wait_ms=20),
                                   [{"question": f"q{i}"} for i in range(4)]))
    assert all(r.status_code == 200 for r in rs) and len(trims) == 2      # one call per reading batch
