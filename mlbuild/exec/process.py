"""Run one step's command as a child process: stream its output, keep a log, enforce a timeout.

Each child gets its own process group so that a timeout or Ctrl-C stops the whole tree it started
(a shell command's grandchildren included), first politely (SIGTERM), then for good (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GRACE_SECONDS = 10.0
MASK = "***"


@dataclass
class ProcessResult:
    returncode: int
    timed_out: bool
    stopped: bool  # ended by stop() (Ctrl-C)


class StepProcess:
    """A started child process. :meth:`wait` streams output until it exits."""

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        secrets: list[str],
        timeout: float | None,
        on_line: Callable[[str], None],
    ) -> None:
        self._log_path = log_path
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self._timeout = timeout
        self._on_line = on_line
        self._timed_out = False
        self._stopped = False
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait(self) -> ProcessResult:
        timer = None
        if self._timeout is not None:
            timer = threading.Timer(self._timeout, self._on_timeout)
            timer.daemon = True
            timer.start()
        assert self.proc.stdout is not None
        with open(self._log_path, "w", encoding="utf-8") as log:
            for raw in self.proc.stdout:
                line = self._mask(raw.decode("utf-8", errors="replace").rstrip("\n"))
                log.write(line + "\n")
                log.flush()
                self._on_line(line)
        code = self.proc.wait()
        if timer is not None:
            timer.cancel()
        return ProcessResult(code, self._timed_out, self._stopped)

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after a grace period."""
        self._stopped = True
        self._terminate()

    def _on_timeout(self) -> None:
        self._timed_out = True
        self._terminate()

    def _terminate(self) -> None:
        _signal_group(self.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(self.proc.pid, signal.SIGKILL)

    def _mask(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, MASK)
        return line


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
