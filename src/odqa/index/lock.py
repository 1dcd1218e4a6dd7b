"""One writer per index: `writer_lock(name, root, wait)` is held around every build of index NAME.

The lock is an OS file lock (`filelock`) on `INDEX_DIR/.locks/NAME.lock`. The OS releases it when
its holder dies, even by SIGKILL, so a killed build never leaves a stale lock behind. The holder
writes its pid beside it (`.locks/NAME.pid`) so that a second writer can say who holds the index.
Readers take no lock: a build swaps the finished folder in with one rename (`odqa.atomic`).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from odqa.errors import IndexBusy
from odqa.index import store

log = logging.getLogger(__name__)


def _holder(pidfile: Path) -> str:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return ""
    return f" (pid {pid})"


@contextmanager
def writer_lock(name: str, root: str | Path | None = None, wait: bool = False) -> Iterator[None]:
    """Hold the writer lock of index NAME; taken already: wait (`wait=True`, saying so) or raise IndexBusy."""
    base = store.index_root(root)
    locks = base / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{store.check_name(name)}.lock"))
    pidfile = locks / f"{name}.pid"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _holder(pidfile)
        if not wait:
            raise IndexBusy(f"index '{name}' in {base}/ is being built by another process{holder}: let it "
                            f"finish, or pass `wait` to build after it") from None
        log.warning(f"waiting for another build of index '{name}'{holder} to finish")
        lock.acquire()
    try:
        pidfile.write_text(f"{os.getpid()}\n")
        yield
    finally:
        pidfile.unlink(missing_ok=True)
        lock.release()
