"""Atomic writes of folders and files: build in a hidden temporary sibling, rename into place at the end.

Every write-then-rename in odqa goes through here (index builds, checkpoints, converted models, reports),
so an interrupted write never leaves half a folder or file and the previous version keeps serving. On Linux
the finished folder and the previous one trade places in one step (`renameat2(RENAME_EXCHANGE)`), so a reader
never finds the folder missing; elsewhere (or on a file system without it) the previous folder is renamed
aside first.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a: Path, b: Path) -> bool:
    """Swap paths `a` and `b` atomically (Linux renameat2); False where this system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writer_pid(tmp_name: str) -> int | None:
    """The process id in a temporary folder's name (`.NAME.tmp-PID-MS`); None where it holds none."""
    pid = tmp_name.rsplit(".tmp-", 1)[-1].split("-")[0]
    return int(pid) if pid.isdigit() else None


def recover(final: Path) -> None:
    """Finish or undo a swap that a killed process left half done."""
    parent = final.parent
    if not parent.exists():
        return
    for tmp in parent.glob(f".{final.name}.tmp-*"):
        pid = _writer_pid(tmp.name)
        if pid is not None and not _pid_alive(pid):           # a name without a process id is left alone
            shutil.rmtree(tmp, ignore_errors=True)
    olds = sorted(parent.glob(f".{final.name}.old-*"))
    if olds and not final.exists():
        olds[-1].rename(final)
        olds = olds[:-1]
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


class AtomicFolder:
    """`with AtomicFolder(final) as tmp:` write into tmp; on success tmp replaces final.

    With `replace=False` a folder already at `final` (another process finished first) is kept and tmp
    discarded: for caches that any process may fill once."""

    def __init__(self, final: Path, replace: bool = True):
        self.final, self.replace = final, replace
        self.tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{int(time.time() * 1000)}"

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        recover(self.final)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if not self.replace:
            self._publish_once()
            return
        if self.final.exists() and exchange(self.tmp, self.final):
            shutil.rmtree(self.tmp, ignore_errors=True)        # now the previous version
            return
        old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
        if self.final.exists():
            self.final.rename(old)
        self.tmp.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)

    def _publish_once(self) -> None:
        try:
            self.tmp.rename(self.final)
        except OSError:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if not self.final.is_dir():
                raise


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """`with atomic_file(path) as tmp:` write the file tmp; on success it replaces path, on failure it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file (UTF-8) through a temporary sibling renamed into place."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
