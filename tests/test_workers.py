"""Process pools: a fork made while a pool is open holds Ctrl-C back from the new worker."""

import os
import signal

from odqa.workers import worker_pool


def _fork_and_report() -> tuple[bool, bool]:
    """(SIGINT ignored, SIGINT blocked) in a child forked now."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, set())
        os.write(w, bytes([ignored, blocked]))
        os._exit(0)
    os.close(w)
    data = os.read(r, 2)
    os.waitpid(pid, 0)
    os.close(r)
    return bool(data[0]), bool(data[1])


def test_a_fork_inside_a_pool_gives_a_worker_that_ignores_ctrl_c_and_leaves_the_parent_as_it_was():
    handler = signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with worker_pool(1):
        assert _fork_and_report() == (True, False)
        assert signal.getsignal(signal.SIGINT) is handler and signal.pthread_sigmask(signal.SIG_BLOCK, set()) == mask
    assert _fork_and_report() == (handler is signal.SIG_IGN, False)     # outside a pool: forks as before


def test_the_pool_still_runs_work_and_leaves_the_parents_ctrl_c_as_it_was():
    handler = signal.getsignal(signal.SIGINT)        # default_int_handler, or SIG_IGN in a background job
    with worker_pool(2) as pool:
        assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
        assert signal.getsignal(signal.SIGINT) is handler
