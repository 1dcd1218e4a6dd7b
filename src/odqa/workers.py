"""Process pools whose workers end with their parent, even when it is killed with SIGKILL.

Each worker asks Linux to send it SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`); where
that is not available it watches `os.getppid()` from a daemon thread. Workers ignore SIGINT: Ctrl-C
reaches the parent, which cancels the queued work and stops them (no traceback from each worker).
While a pool is open, SIGINT is held back across each fork: a Ctrl-C that lands while a worker is being
forked reaches the parent once the fork is done, never the new worker half set up (where it would
interrupt the interpreter's own at-fork handlers and print "Exception ignored in ...").
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
_open_pools = 0
_held: list = []                        # the signal mask before the fork in progress (main thread only)


def _before_fork() -> None:
    if _open_pools and threading.current_thread() is threading.main_thread():
        _held.append(signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}))


def _after_fork_in_parent() -> None:
    if _held:
        signal.pthread_sigmask(signal.SIG_SETMASK, _held.pop())


def _after_fork_in_child() -> None:
    if _held:
        signal.signal(signal.SIGINT, signal.SIG_IGN)      # a Ctrl-C held back meanwhile is dropped here
        signal.pthread_sigmask(signal.SIG_SETMASK, _held.pop())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


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
    global _open_pools
    pool = ProcessPoolExecutor(workers, mp_context=mp_context, initializer=end_with_parent,
                               initargs=(os.getpid(),))
    _open_pools += 1
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        _open_pools -= 1
    pool.shutdown(wait=True)
