"""One ``mlbuild run`` at a time per workspace: an advisory lock on ``.mlbuild/run.lock``.

The kernel drops a ``flock`` when its holder dies, even by SIGKILL, so a crashed run never leaves
a stale lock behind. The file names the holder for the message a second run prints. Whoever takes
the lock first stops any step a killed run left running (:mod:`mlbuild.exec.leftovers`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mlbuild import atomic
from mlbuild.errors import LockedError
from mlbuild.exec.leftovers import stop_executor_leftovers, stop_leftovers


@contextlib.contextmanager
def run_lock(meta: Path, *, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the workspace's run lock; without ``wait``, refuse at once if another run holds it.

    ``on_wait`` is told what the caller may have to wait for: the other run, or stopping the
    steps a killed run left behind."""
    atomic.own_folder(meta).mkdir(parents=True, exist_ok=True)
    path = meta / "run.lock"
    try:  # not through a symlink planted there (the holder's name would overwrite its target)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError:
        if path.is_symlink():
            raise atomic.planted_error(path) from None
        raise
    try:
        info = os.fstat(fd)
        # a FIFO, a device; a hardlink to another file, which the holder's name would overwrite
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise atomic.planted_error(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise LockedError(
                    f"another mlbuild run ({holder}) is running in this workspace; "
                    "wait for it to finish, or pass --wait to queue behind it"
                ) from None
            on_wait(f"waiting for the other mlbuild run ({holder}) to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}".encode(), 0)
        stop_leftovers(meta, on_wait)
        stop_executor_leftovers(meta, on_wait)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _holder(path: Path) -> str:
    try:
        return atomic.read_own(path, 4096).decode("utf-8").strip() or "pid unknown"
    except (OSError, ValueError):
        return "pid unknown"
