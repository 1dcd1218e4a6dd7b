"""Process pools whose workers end with their parent, even when it is killed with SIGKILL.

Each worker asks Linux to send it SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`); where
that is not available it watches `os.getppid()` from a daemon thread. Workers ignore SIGINT: Ctrl-C
reaches the parent, which cancels the queued work and stops them (no traceback from each worker).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator

_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def end_with_parent(parent: int) -> None:
    """Pool initializer: this process ends when process `parent` does; Ctrl-C is left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        try:
            armed = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:          # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


@contextmanager
def worker_pool(workers: int, mp_context=None) -> Iterator[ProcessPoolExecutor]:
    """A ProcessPoolExecutor of `workers` processes that end with this one; on an exception (Ctrl-C
    included) queued work is cancelled instead of waited for."""
    pool = ProcessPoolExecutor(workers, mp_context=mp_context, initializer=end_with_parent,
                               initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
