"""A step's output as lines: masked as a stream, split into lines, written to its log and passed
on to the reporter. Shared by every executor that streams a process's output."""

from __future__ import annotations

import codecs
import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from mlbuild.atomic import NO_SPACE, disk_full
from mlbuild.errors import MlbuildError
from mlbuild.masking import StreamMasker

_T = TypeVar("_T")

MAX_LINE = 64 * 1024  # a longer line without a newline is passed on in pieces


class Lines:
    """Masked output → whole lines → the log file and the line callback."""

    def __init__(self, masker: StreamMasker, log: Path, on_line: Callable[[str], None]) -> None:
        self._masker = masker
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._path = log
        self._on_line = on_line
        self._partial = ""
        self._log: IO[str] | None = None

    def __enter__(self) -> Lines:
        # closed by __exit__: this object is the context manager
        self._log = self._guarded(lambda: open(_log_fd(self._path), "w", encoding="utf-8"))  # noqa: SIM115
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        log, self._log = self._log, None
        if log is None:
            return
        if kind is None:
            self._guarded(log.close)
            return
        # the tail a full disk refused fails again as the log closes (the descriptor is closed
        # all the same): the error already on its way names the log and the cause
        with contextlib.suppress(OSError):
            log.close()

    def feed(self, data: bytes) -> None:
        self._emit(self._decoder.decode(self._masker.feed(data)))

    def close(self, note: str | None) -> None:
        self._emit(self._decoder.decode(self._masker.flush(), final=True))
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        if note is not None:
            self._write(f"mlbuild: {note}\n")

    def _emit(self, text: str) -> None:
        if not text:
            return
        *complete, self._partial = (self._partial + text).split("\n")
        while len(self._partial) > MAX_LINE:
            complete.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        if complete:
            self._write("".join(f"{line}\n" for line in complete))
            for line in complete:
                self._on_line(line)

    def _line(self, line: str) -> None:
        self._write(line + "\n")
        self._on_line(line)

    def _write(self, text: str) -> None:
        log = self._log
        assert log is not None

        def write() -> None:
            log.write(text)
            log.flush()

        self._guarded(write)

    def _guarded(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise disk_full(self._path, None) from None
            where = os.path.relpath(self._path)
            raise MlbuildError(f"cannot write the log {where}: {exc.strerror}") from None


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _log_fd(path: Path) -> int:
    """The log at ``path``, emptied: a new file in place of a symlink (maybe out of the
    workspace), a FIFO or a hardlink to another file planted there, which is neither written
    through (nor emptied) nor waited on."""
    try:
        fd = os.open(path, _LOG_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO with no reader
            raise
    else:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)  # a FIFO someone reads, a device, a file linked elsewhere too
    path.unlink()
    return os.open(path, _LOG_FLAGS | os.O_EXCL, 0o644)
