"""A remote cache in a directory: a mounted share, a path any clone on the machine can reach.

Written as the local cache is written (:mod:`mlbuild.atomic`: a temporary name beside the file,
flushed, renamed over it), so a reader never sees part of a file and a killed writer leaves only
a dot-file. Read without following symbolic links: whoever can write to the share must not be
able to make a reader open a file elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from mlbuild import atomic
from mlbuild.cache.remote.backend import Opened, RemoteFileError


class DirectoryBackend:
    """Files under ``root``; see :class:`~mlbuild.cache.remote.backend.Backend`."""

    def __init__(self, root: Path, shown: str | None = None) -> None:
        self.root = root
        self.shown = shown or str(root)

    @contextlib.contextmanager
    def opened(self, key: str) -> Iterator[Opened]:
        path = self.root / key
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise RemoteFileError("is a symbolic link") from None
            raise
        with os.fdopen(fd, "rb", buffering=0) as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise RemoteFileError("is not a regular file")
            yield Opened(info.st_size, handle.read)

    def size(self, key: str) -> int | None:
        try:
            info = os.lstat(self.root / key)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise RemoteFileError("is a symbolic link")
        if not stat.S_ISREG(info.st_mode):
            raise RemoteFileError("is not a regular file")
        return info.st_size

    def write(self, key: str, data: bytes) -> None:
        atomic.write_bytes(self._target(key), data, mode=_mode(key))

    def upload(self, key: str, source: Path, size: int) -> None:
        with atomic.replacing(self._target(key), mode=_mode(key), size=size) as tmp:
            shutil.copyfile(source, tmp)

    def _target(self, key: str) -> Path:
        """Where ``key`` is written, refusing a folder on the way that is a symbolic link: a file
        named by a digest must not land in a directory someone else chose."""
        folder = self.root
        for part in key.split("/")[:-1]:
            folder = folder / part
            if folder.is_symlink():
                raise RemoteFileError(f"{folder} is a symbolic link; mlbuild writes no file there")
        return self.root / key


def _mode(key: str) -> int:
    # objects are read-only, as in the local store; an entry may be replaced by a later writer
    return 0o444 if key.startswith("objects/") else 0o644
