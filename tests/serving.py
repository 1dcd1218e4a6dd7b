"""Helpers for the server's tests and scripts/load_test.py: a fake pipeline that records its batches,
and a real `odqa serve` process on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import odqa

from odqa.api.pipeline import QAResult
from odqa.errors import OdqaError
from odqa.types import Answer, Hit, Passage

PASSAGE = Passage("p1", "한라산", "한라산은 제주도에 있는 산으로 높이는 1,947미터이다.")


@dataclass
class FakeIndex:
    name: str = "demo"
    passages: list = field(default_factory=lambda: [PASSAGE])
    dense: bool = False

    def has_dense(self) -> bool:
        return self.dense


class FakePipeline:
    """Answers every question with '1,947미터' from PASSAGE. Records each retrieval batch (questions, k) in
    `calls` and each reading batch's questions in `reads`; `delay` and `fail` are the reading's."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None, mode: str = "sparse", windows: int = 1):
        self.delay, self.fail, self.mode, self.windows = delay, fail, mode, windows
        self.index, self.calls, self.reads, self._lock = FakeIndex(), [], [], threading.Lock()
        self.reader_settings, self.sentence_level = {"readers": ["fake"]}, False

    @property
    def retrieval(self):                 # the first stage: this fake retrieves as it answers
        return self

    def in_mode(self, mode):
        if mode in ("dense", "hybrid"):
            raise OdqaError(f"index '{self.index.name}' has no dense part: add it with `odqa index --dense`")
        return self

    def retrieve_batch(self, questions, k=None, filters=None):
        return [[Hit(PASSAGE, 3.5, 1, "sparse")][:k] for _ in questions]

    def passages_for(self, questions, k=None, filters=None):
        with self._lock:
            self.calls.append((list(questions), k))
        return self.retrieve_batch(questions, k, filters), {"retrieve": 0.001}

    def count_windows(self, question, hits):
        return self.windows

    def answers_from(self, questions, hits, timings=None):
        with self._lock:
            self.reads.append(list(questions))
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        s, e = PASSAGE.text.index("1,947"), PASSAGE.text.index("이다")
        spans = [Answer(PASSAGE.text[s:e], "p1", s, e, 9.0, 0.9), Answer("제주도", "p1", 5, 8, 4.0, 0.1)]
        return [QAResult(q, list(spans), list(h), {**(t or {}), "read": 0.002})
                for q, h, t in zip(questions, hits, timings or [None] * len(questions))]

    def ask_batch(self, questions, k=None, filters=None):
        hits, timings = self.passages_for(questions, k, filters)
        return self.answers_from(questions, hits, [timings] * len(questions))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, body: dict | None = None, timeout: float = 60, headers: dict | None = None):
    """(status, JSON body) of a GET (or a POST of `body`)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data, {"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class ServerProcess:
    """`python -m odqa serve ARGS --port FREE` until stopped; `.url`, `.wait_ready()`, `.stop()`."""

    def __init__(self, *args, cwd=None, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        src = str(Path(odqa.__file__).resolve().parents[1])     # the odqa under test, whatever the cwd
        path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
        self.log = tempfile.NamedTemporaryFile("w+", prefix="odqa-serve-", suffix=".log", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "odqa", "serve", *map(str, args), "--port", str(self.port)],
                                     cwd=cwd, env={**os.environ, "ODQA_QUIET": "1", "PYTHONPATH": path, **(env or {})},
                                     stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        """What the server printed so far (its log and uvicorn's)."""
        with open(self.log.name, encoding="utf-8") as f:
            return f.read()

    def wait_ready(self, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"odqa serve exited {self.proc.returncode}:\n{self.output()}")
            try:
                if get_json(self.url + "/v1/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"odqa serve was not ready within {timeout:g} s")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.log.close()
