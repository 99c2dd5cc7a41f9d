"""Where bad cache files go: moved aside, never used again, never silently deleted.

A corrupt object, a damaged action entry or a swapped serving copy is renamed into a quarantine
folder (``CACHE/quarantine/``, or ``.mlbuild/serving/quarantine/``), named by what it was and when,
so the user can look at it; ``mlbuild gc`` counts but never removes them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlbuild.atomic import planted, planted_error


def move_aside(path: Path, folder: Path, name: str, *, inode: int | None = None) -> Path | None:
    """Rename ``path`` (a file, link or folder) into ``folder`` as ``name.<time>.<random>``.

    With ``inode``, only if ``path`` is still that file: another process may have put a good copy
    in its place since it was found bad. ``None`` when there was nothing (left) to move.
    Raises :class:`~mlbuild.errors.PlantedError` when something other than a folder stands at
    ``folder`` (a symlink out of the workspace would have the bad file moved there).
    """
    if planted(folder):
        raise planted_error(folder)
    try:
        if inode is not None and os.lstat(path).st_ino != inode:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.{time.strftime('%Y%m%dT%H%M%S')}.{os.urandom(4).hex()}"
        os.rename(path, target)
    except FileNotFoundError:
        return None  # another process moved or replaced it first
    return target


def count(folder: Path) -> int:
    """How many things are in quarantine under ``folder``."""
    try:
        return sum(1 for _ in folder.iterdir())
    except FileNotFoundError:
        return 0
