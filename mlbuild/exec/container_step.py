"""One step running in a container: its output streamed and masked, its timeout, its stop.

The output is read from an attach stream opened before the container starts (so nothing is
missed, and the engine keeps no log of its own: the container's log driver is ``none``, so a
secret a step prints is never written to the engine's disk unmasked). The engine copies stdout
and stderr through two pipes, so what a step writes to one in pieces may arrive with the other's
output between the pieces: each stream's pieces are joined into whole lines before they are
masked and logged — a secret written in two pieces is masked however the other stream
interleaves (lines of the two streams keep their order of arrival). The stream ends when the
container stops, which is when the step's command exits — the container's init (``docker-init``)
is its first process and ends the container with it, taking whatever the command left running
along. So a container step is done when its command exits and no output is ever cut.

A timeout or :meth:`stop` sends SIGTERM to the command (through the init, which forwards it),
then SIGKILL after the grace period (:data:`~mlbuild.exec.executor.GRACE_SECONDS`). However
:meth:`wait` ends — normally, stopped, or on an error — the container is removed; the outputs are
collected only after it is gone, so nothing can still be writing them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError
from mlbuild.exec.docker_client import EngineError, explain, is_connection_error, lost
from mlbuild.exec.executor import GRACE_SECONDS, ProcessResult
from mlbuild.exec.lines import MAX_LINE, Lines
from mlbuild.masking import Secrets

_TICK = 0.1  # how often the timeout and the stop's grace period are checked


class ContainerStep:
    """A started container; :meth:`wait` streams its output until it is done and removes it."""

    def __init__(
        self,
        container: Any,
        stream: Iterator[tuple[bytes | None, bytes | None]],
        *,
        step: str,
        log_path: Path,
        secrets: Secrets,
        timeout: float | None,
        on_line: Callable[[str], None],
        collect: Callable[[], None],
        cleanup: Callable[[], None],
    ) -> None:
        self._container = container
        self._stream = stream
        self._step = step
        self._log_path = log_path
        self._secrets = secrets
        self._timeout = timeout
        self._on_line = on_line
        self._collect = collect  # moves the outputs into the workspace (after removal)
        self._cleanup = cleanup  # deletes the scratch directory and the secret files
        self.ident = f"container {container.id[:12]}"
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stop_at: float | None = None
        self._term_at: float | None = None
        self._killed = False
        self._timed_out = False
        self._removed = False
        self._failure: BaseException | None = None

    def stop(self) -> None:
        """SIGTERM to the command now, SIGKILL after the grace period. Any thread."""
        with self._lock:
            if self._stop_at is None:
                self._stop_at = time.monotonic()
        self._signal("SIGTERM")

    def abandon(self) -> None:
        """Remove the container at once (SIGKILL), collect nothing."""
        try:
            self._remove()
        finally:
            with contextlib.suppress(Exception):
                self._stream_close()
            self._cleanup()

    def wait(self) -> ProcessResult:
        """Stream the output to the log and ``on_line`` until the command exits; remove the
        container, collect the outputs, and say how it ended."""
        try:
            pump = threading.Thread(target=self._pump, name=f"mlbuild-log-{self._step}")
            pump.start()
            while pump.is_alive():
                self._supervise()
                pump.join(_TICK)
            if self._failure is not None:
                raise self._failure
            code = self._exit_code()
            self._remove(strict=True)
            self._collect()
        except BaseException:
            self.abandon()
            raise
        self._cleanup()
        return ProcessResult(code, self._timed_out, self._stop_at is not None, cut=False)

    def _pump(self) -> None:
        try:
            with Lines(self._secrets.stream(), self._log_path, self._on_line) as lines:
                streams = _ByStream(lines)
                for frame in self._chunks():
                    for index, data in enumerate(frame):
                        if data:
                            streams.feed(index, data)
                streams.close()
                lines.close(None)
        except BaseException as exc:  # handed to wait(), which stops the container
            self._failure = exc
            with contextlib.suppress(Exception):
                self._signal("SIGKILL")

    def _chunks(self) -> Iterator[tuple[bytes | None, bytes | None]]:
        """The output stream's frames, ``(stdout, stderr)`` with one of them ``None``; a stream
        that breaks is an engine that went away."""
        chunks = iter(self._stream)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as exc:
                raise self._lost(exc) from None
            yield chunk

    def _lost(self, exc: BaseException) -> EngineError:
        return lost(exc, f"step '{self._step}' ran ({self.ident})")

    def _supervise(self) -> None:
        now = time.monotonic()
        timeout = self._timeout
        if timeout is not None and self._term_at is None and now - self._started >= timeout:
            self._timed_out = True
            self._term_at = now
            self._signal("SIGTERM")
        first = min((t for t in (self._stop_at, self._term_at) if t is not None), default=None)
        if first is not None and not self._killed and now >= first + GRACE_SECONDS:
            self._killed = True
            self._signal("SIGKILL")

    def _exit_code(self) -> int:
        """The command's exit code, once the container has stopped. Its output usually ends
        with it, but a command may close its output and go on: the timeout still holds then."""
        while True:
            try:
                state = self._container.client.api.inspect_container(self._container.id)["State"]
            except Exception as exc:
                if is_connection_error(exc):
                    raise self._lost(exc) from None
                raise MlbuildError(
                    f"cannot read how the container of step '{self._step}' ended: {explain(exc)}"
                ) from None
            if state.get("Status") not in ("created", "running", "restarting", "paused"):
                return int(state.get("ExitCode", -1))
            self._supervise()
            time.sleep(_TICK)

    def _signal(self, sig: str) -> None:
        with self._lock:
            if self._removed:
                return
            with contextlib.suppress(Exception):  # not running (any more), or already removed
                self._container.kill(signal=sig)

    def _remove(self, *, strict: bool = False) -> None:
        """Remove the container (killing it if it still runs). ``strict``: an engine that
        refuses is an error (the next run's leftover sweep would find it), else ignored."""
        with self._lock:
            if self._removed:
                return
            self._removed = True
        try:
            self._container.remove(force=True, v=True)
        except Exception as exc:
            if strict and getattr(exc, "status_code", None) != 404:
                raise MlbuildError(
                    f"cannot remove the container of step '{self._step}' ({self.ident}): "
                    f"{explain(exc)}; the next run removes it"
                ) from None

    def _stream_close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class _ByStream:
    """Each stream's output passed on in whole lines, so that the pieces of one stream's line are
    never masked apart with the other stream's output between them (see the module docstring)."""

    def __init__(self, lines: Lines) -> None:
        self._lines = lines
        self._partial = [b"", b""]  # stdout's, stderr's unfinished line

    def feed(self, index: int, data: bytes) -> None:
        pending = self._partial[index] + data
        cut = pending.rfind(b"\n") + 1
        if len(pending) - cut > MAX_LINE:  # a line that never ends is passed on in pieces
            cut = len(pending)
        if cut:
            self._lines.feed(pending[:cut])
        self._partial[index] = pending[cut:]

    def close(self) -> None:
        """The output has ended: each stream's unfinished line is a line of its own."""
        for rest in self._partial:
            if rest:
                self._lines.feed(rest + b"\n")
        self._partial = [b"", b""]
