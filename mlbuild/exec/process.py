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

import contextlib
import functools
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlbuild.errors import MlbuildError
from mlbuild.exec.executor import GRACE_SECONDS, ProcessRequest, ProcessResult
from mlbuild.exec.leftovers import Tracker, stop_leftovers
from mlbuild.exec.lines import Lines
from mlbuild.masking import Secrets
from mlbuild.paths import META_DIR

_Lines = Lines  # its name here before the split; the container executor's draft imports it

# GRACE_SECONDS and ProcessResult are re-exported for code written against the draft interface
__all__ = ["CUT_NOTE", "GRACE_SECONDS", "LocalExecutor", "ProcessResult", "StepProcess", "_Lines"]

DRAIN_SECONDS = 1.0  # reading output after the command exited
_READ = 64 * 1024
_TICK = 0.1  # how often deadlines are checked while nothing happens
_POLL = 0.01  # how often the exit is checked where it cannot be waited for (no pidfd)
_BATCH = 0.002  # at most 500 reads a second: 64 KiB each, up to 32 MB/s of output
CUT_NOTE = (
    "output after the command exited was cut: a process it started outside its process group "
    "still holds the output open"
)


class LocalExecutor:
    """Steps as child processes of mlbuild, on this machine, with the host's environment.

    Each step's process is registered with the watchdog (:mod:`mlbuild.exec.guard`) and noted in
    ``.mlbuild/running/`` (:mod:`mlbuild.exec.leftovers`) while it runs, so it dies with the run
    even when mlbuild is killed outright.
    """

    name: ClassVar[str] = "local"

    def __init__(self) -> None:
        self._trackers: dict[Path, Tracker] = {}
        self._lock = threading.Lock()

    def identity(self, options: Mapping[str, Any]) -> dict[str, str]:
        return {}

    def environment(self, request: ProcessRequest) -> dict[str, str]:
        """The process's environment: the host's, the secrets, then what the step declares."""
        return {**os.environ, **request.passthrough, **request.env}

    def start(self, request: ProcessRequest) -> LocalStep:
        tracker = self._tracker(request.workspace)
        proc = StepProcess(
            request.argv,
            cwd=request.workspace,
            env=self.environment(request),
            log_path=request.log_path,
            secrets=request.secrets,
            timeout=request.timeout,
            on_line=request.on_line,
        )
        try:
            tracker.started(request.step, proc.pid)
        except BaseException as exc:
            proc.abandon()
            tracker.ended(request.step, proc.pid)
            if isinstance(exc, OSError):  # not the command's fault: say what could not be written
                where = f": {exc.filename}" if exc.filename else ""
                raise MlbuildError(
                    f"cannot note the running step in .mlbuild/running: {exc.strerror}{where}"
                ) from None
            raise
        return LocalStep(proc, request.step, tracker)

    def leftovers(self, workspace: Path) -> list[str]:
        stopped: list[str] = []
        stop_leftovers(workspace / META_DIR, stopped.append)
        return stopped

    def close(self) -> None:
        with self._lock:
            trackers, self._trackers = list(self._trackers.values()), {}
        for tracker in trackers:
            tracker.close()

    def _tracker(self, workspace: Path) -> Tracker:
        with self._lock:
            if workspace not in self._trackers:
                self._trackers[workspace] = Tracker(workspace / META_DIR)
            return self._trackers[workspace]


class LocalStep:
    """A :class:`~mlbuild.exec.executor.RunningStep` for a local child process."""

    def __init__(self, proc: StepProcess, step: str, tracker: Tracker) -> None:
        self.proc = proc
        self.ident = f"pid {proc.pid}"
        self._step = step
        self._tracker = tracker

    def wait(self) -> ProcessResult:
        try:
            return self.proc.wait()
        finally:
            self._tracker.ended(self._step, self.proc.pid)

    def stop(self) -> None:
        self.proc.stop()

    def abandon(self) -> None:
        try:
            self.proc.abandon()
        finally:
            self._tracker.ended(self._step, self.proc.pid)


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
            with Lines(self._masker, self._log_path, self._on_line) as lines:
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
