"""Run one step's command as a child process: stream its output, keep a log, enforce a timeout.

Each child leads its own session and process group, so that a timeout, Ctrl-C or mlbuild's own
death stops the whole tree it started (a shell command's grandchildren included): first politely
(SIGTERM), then for good (SIGKILL). The child asks the kernel for SIGTERM when mlbuild dies
(``PR_SET_PDEATHSIG``); its descendants are stopped by :mod:`mlbuild.exec.guard`.

A step is done when its command's process exits, not when its output pipe closes: a background
child (``sleep 300 &``) may hold the pipe open forever. When the command exits, whatever it left
running in its process group is stopped (as Bazel does, unlike make and DVC: a step is a unit, and
a leftover writing into the workspace after its outputs were stored would corrupt them); output
still buffered is read for up to :data:`DRAIN_SECONDS`, and if a process outside the group (it
called ``setsid``) still holds the pipe then, the rest is cut and the log says so.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from mlbuild.errors import MlbuildError
from mlbuild.masking import Secrets, StreamMasker

_T = TypeVar("_T")

GRACE_SECONDS = 10.0  # between SIGTERM and SIGKILL when a step is stopped
DRAIN_SECONDS = 1.0  # reading output after the command exited
MAX_LINE = 64 * 1024  # a longer line without a newline is passed on in pieces
_READ = 64 * 1024
_TICK = 0.1  # how often deadlines are checked while nothing happens
_POLL = 0.01  # how often the exit is checked where it cannot be waited for (no pidfd)
_BATCH = 0.002  # at most 500 reads a second: 64 KiB each, up to 32 MB/s of output
CUT_NOTE = (
    "output after the command exited was cut: a process it started outside its process group "
    "still holds the output open"
)


@dataclass
class ProcessResult:
    returncode: int
    timed_out: bool
    stopped: bool  # ended by stop() (Ctrl-C, SIGTERM, SIGHUP)
    cut: bool = False  # output after exit was not read (see CUT_NOTE)


class StepProcess:
    """A started child process. :meth:`wait` streams its output until it is done."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        secrets: Secrets,
        timeout: float | None,
        on_line: Callable[[str], None],
    ) -> None:
        self._log_path = log_path
        self._masker = secrets.stream()
        self._timeout = timeout
        self._on_line = on_line
        self._lock = threading.Lock()  # orders signals against reaping: a reaped pid is reusable
        self._reaped = False
        self._stop_at: float | None = None  # when stop() was first called
        self._term_at: float | None = None  # when the timeout's SIGTERM was sent
        self._timed_out = False
        self._exited_at: float | None = None
        self._started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # only a prctl call runs between fork and exec: no lock a thread may hold is taken
            preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509
        )
        self.pid = self.proc.pid

    def stop(self) -> None:
        """Stop the process group: SIGTERM now, SIGKILL after the grace period. Any thread."""
        with self._lock:
            if self._stop_at is None:
                self._stop_at = time.monotonic()
        self._signal(signal.SIGTERM)

    def wait(self) -> ProcessResult:
        """Stream output to the log and ``on_line`` until the command exits; reap it.

        If anything goes wrong meanwhile (the log cannot be written), the process group is
        killed and reaped before the error propagates: a step never outlives its wait."""
        assert self.proc.stdout is not None
        try:
            eof = self._stream(self.proc.stdout.fileno())
        except BaseException:
            self.abandon()
            raise
        self.proc.stdout.close()
        return ProcessResult(self._reap(), self._timed_out, self._stop_at is not None, cut=not eof)

    def abandon(self) -> None:
        """Kill the process group and reap the command, reading nothing more."""
        self._signal(signal.SIGKILL)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self._reap()

    def _stream(self, fd: int) -> bool:
        """Copy output until the command exited and the pipe closed or was drained; True if
        it closed (everything was read)."""
        os.set_blocking(fd, False)
        exit_fd = _pidfd(self.pid)  # readable when the command exits: no polling for it
        eof = False
        try:
            with _Lines(self._masker, self._log_path, self._on_line) as lines:
                check_at = 0.0  # deadlines and the exit are checked every tick, not every read
                while True:
                    now = time.monotonic()
                    if self._exited_at is None and now >= check_at:
                        check_at = now + (_TICK if exit_fd is not None else _POLL)
                        self._supervise()
                    exited_at = self._exited_at
                    if exited_at is not None and (eof or now >= exited_at + DRAIN_SECONDS):
                        break
                    watch = [] if eof else [fd]
                    if exit_fd is not None and exited_at is None:
                        watch.append(exit_fd)
                    if not watch:  # output closed, but no way to wait for the exit itself
                        time.sleep(_POLL)
                        continue
                    ready = select.select(watch, [], [], _TICK)[0]
                    if fd in ready:
                        eof = _read_available(fd, lines.feed)
                        if not eof:  # a moment for more to arrive: a command printing line by
                            time.sleep(_BATCH)  # line would pay a wake-up for every line
                    if exit_fd in ready:
                        check_at = 0.0
                self._signal(signal.SIGKILL)  # the leader is unreaped: the group id is still ours
                if not eof:
                    eof = _read_available(fd, lines.feed)
                lines.close(None if eof else CUT_NOTE)
        finally:
            if exit_fd is not None:
                os.close(exit_fd)
        return eof

    def _reap(self) -> int:
        with self._lock:
            code = self.proc.wait()
            self._reaped = True
        return code

    def _supervise(self) -> None:
        """Enforce the timeout and the stop grace period; note when the command has exited,
        and stop what it left running."""
        now = time.monotonic()
        timeout = self._timeout
        if timeout is not None and self._term_at is None and now - self._started >= timeout:
            self._timed_out = True
            self._term_at = now
            self._signal(signal.SIGTERM)
        first = min((t for t in (self._stop_at, self._term_at) if t is not None), default=None)
        if first is not None and now >= first + GRACE_SECONDS:
            self._signal(signal.SIGKILL)
        if self._exited():
            self._exited_at = now
            self._signal(signal.SIGTERM)  # what the command left running in its group

    def _exited(self) -> bool:
        """Has the command exited? Asked without reaping it, so its group id stays reserved."""
        try:
            status = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return status is not None

    def _signal(self, sig: signal.Signals) -> None:
        with self._lock:
            if not self._reaped:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, sig)


class _Lines:
    """Masked output → whole lines → the log file and the line callback."""

    def __init__(self, masker: StreamMasker, log: Path, on_line: Callable[[str], None]) -> None:
        self._masker = masker
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._path = log
        self._on_line = on_line
        self._partial = ""
        self._log: IO[str] | None = None

    def __enter__(self) -> _Lines:
        # closed by __exit__: this object is the context manager
        self._log = self._guarded(lambda: open(self._path, "w", encoding="utf-8"))  # noqa: SIM115
        return self

    def __exit__(self, *exc: object) -> None:
        if self._log is not None:
            self._log.close()

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
            where = os.path.relpath(self._path)
            raise MlbuildError(f"cannot write the log {where}: {exc.strerror}") from None


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when ``pid`` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _read_available(fd: int, feed: Callable[[bytes], None]) -> bool:
    """Read what the pipe holds now (a bounded amount); True at end of file."""
    for _ in range(16):
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return False
        if not data:
            return True
        feed(data)
        if len(data) < _READ:  # the pipe is empty now: spare the read that would say so
            return False
    return False


_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to send the child SIGTERM when ``parent`` dies.

    The kernel sends it when the *thread* that forked exits: each step is spawned and waited for
    by the same executor thread, which outlives the child. Linux only; elsewhere, nothing.
    """
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # mlbuild died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@functools.cache
def _prctl() -> Callable[..., int] | None:
    try:
        import ctypes

        found: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return found


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
