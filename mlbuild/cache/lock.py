"""The cache lock: writers share it, ``gc`` takes it alone.

Why a lock and not a grace window for young files: a run that finds an object already present
stores nothing, yet its new entry depends on that (possibly old) object, and it writes the entry
and then its step record some time later. ``gc`` must not decide what is unreferenced in between.
Age cannot tell that apart; a lock can. Runs hold the lock shared only while they store a step's
outputs, entry and record (or restore them), so runs in many clones never wait for each other, and
``gc`` waits for those moments (or refuses) and then blocks new ones until it is done.
``flock`` is released by the kernel when its holder dies, so a killed process never leaves it held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from mlbuild import atomic
from mlbuild.errors import LockedError

LOCK_FILE = "lock"


@contextlib.contextmanager
def shared(root: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of the cache at ``root`` with other writers; waits while ``gc`` runs."""
    with _locked(root, fcntl.LOCK_SH, wait=True, on_wait=on_wait):
        yield


@contextlib.contextmanager
def exclusive(root: Path, *, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the lock of the cache at ``root`` alone; without ``wait``, refuse while others
    write."""
    with _locked(root, fcntl.LOCK_EX, wait=wait, on_wait=on_wait):
        yield


@contextlib.contextmanager
def _locked(
    root: Path, kind: int, *, wait: bool, on_wait: Callable[[str], None] | None
) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    # not through a symlink planted there (O_CREAT would make its target, maybe out of the
    # workspace), nor waiting on a FIFO
    flags = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
        except PermissionError:  # another user's lock file in a shared cache: flock needs no write
            fd = os.open(path, os.O_RDONLY | flags)
    except OSError:
        if path.is_symlink():
            raise atomic.planted_error(path) from None
        raise
    try:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = (
                f"mlbuild gc is collecting the cache at {root}"
                if kind == fcntl.LOCK_SH
                else f"an mlbuild run is writing to the cache at {root}"
            )
            if not wait:
                raise LockedError(f"{busy}; try again when it is done, or pass --wait") from None
            if on_wait is not None:
                on_wait(f"waiting: {busy}")
            fcntl.flock(fd, kind)
        yield
    finally:
        os.close(fd)
