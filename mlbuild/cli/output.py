"""Terminal output: live progress on a TTY, plain lines in CI, tables, and JSON for scripts."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, TextIO

from mlbuild.cli.text import dump_json, format_value, printable, table
from mlbuild.exec import RunSummary, Status, StepOutcome

__all__ = [
    "Console",
    "JsonReporter",
    "StepReporter",
    "dump_json",
    "format_metrics",
    "format_value",
    "summary_json",
    "summary_line",
    "table",
]

_COLORS = {"green": "32", "red": "31", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Console:
    """Where output goes and whether it may use colour and redraw lines."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.is_tty = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self.color = self.is_tty and "NO_COLOR" not in os.environ

    def paint(self, text: str, color: str) -> str:
        return f"\x1b[{_COLORS[color]}m{text}\x1b[0m" if self.color else text

    def print(self, text: str = "") -> None:
        self.write(text + "\n")

    def write(self, text: str) -> None:
        """Write and flush; a terminal that went away (SIGHUP, a closed pipe) is not the steps'
        problem: their output is in their logs, and the run goes on to stop cleanly."""
        with contextlib.suppress(OSError):
            self.stream.write(text)
            self.stream.flush()


_LABEL = {
    Status.CACHED: ("cached", "dim"),
    Status.RESTORED: ("restored from cache", "blue"),
    Status.RAN: ("done", "green"),
    Status.FAILED: ("FAILED", "red"),
    Status.SKIPPED: ("skipped", "yellow"),
    Status.INTERRUPTED: ("interrupted", "yellow"),
}


class StepReporter:
    """Prints step events as lines; on a TTY also keeps a live status line at the bottom.

    Called from executor threads, so every write holds one lock. With ``quiet`` the steps' own
    output goes only to their log files.
    """

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.lock = threading.Lock()
        self.running: dict[str, float] = {}
        self.done = 0
        self._status_shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if console.is_tty:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self.lock:
            self._clear()

    def step_started(self, name: str, reasons: list[str]) -> None:
        why = f" ({_shown('; '.join(reasons))})" if reasons else ""
        self._line(f"{self.console.paint(name, 'bold')}: running{why}")
        with self.lock:
            self.running[name] = time.monotonic()

    def step_output(self, name: str, line: str) -> None:
        if not self.quiet:
            self._line(f"{self.console.paint(f'[{name}]', 'dim')} {line}")

    def step_note(self, name: str, text: str) -> None:
        self._line(f"{self.console.paint(name, 'bold')}: {_shown(text)}")

    def step_finished(self, outcome: StepOutcome) -> None:
        label, color = _LABEL[outcome.status]
        text = f"{self.console.paint(outcome.name, 'bold')}: {self.console.paint(label, color)}"
        if outcome.status is Status.RAN:
            text += f" in {outcome.duration:.2f}s"
        if outcome.status is Status.RESTORED and outcome.reasons:
            text += f" ({_shown('; '.join(outcome.reasons))})"
        if outcome.message:
            text += f": {_shown(outcome.message)}"
        if outcome.status is Status.FAILED and outcome.log:
            text += f" (log: {outcome.log})"
        with self.lock:
            self.running.pop(outcome.name, None)
            self.done += 1
        self._line(text)

    def _line(self, text: str) -> None:
        with self.lock:
            self._clear()
            self.console.print(text)
            self._draw()

    def _clear(self) -> None:
        if self._status_shown:
            self.console.write("\r\x1b[K")
            self._status_shown = False

    def _draw(self) -> None:
        if not self.console.is_tty or not self.running:
            return
        now = time.monotonic()
        frame = _SPINNER[int(now * 10) % len(_SPINNER)]
        busy = ", ".join(f"{n} {now - t:.0f}s" for n, t in self.running.items())
        self.console.write(self.console.paint(f"{frame} running: {busy}", "blue"))
        self._status_shown = True

    def _tick(self) -> None:
        while not self._stop.wait(0.1):
            with self.lock:
                self._clear()
                self._draw()


class JsonReporter:
    """For ``--json``: nothing on stdout until the summary; steps' output goes to stderr."""

    def step_started(self, name: str, reasons: list[str]) -> None:
        pass

    def __init__(self) -> None:
        self.console = Console(sys.stderr)

    def step_output(self, name: str, line: str) -> None:
        self.console.print(f"[{name}] {line}")

    def step_note(self, name: str, text: str) -> None:
        self.console.print(f"{name}: {_shown(text)}")

    def step_finished(self, outcome: StepOutcome) -> None:
        pass

    def close(self) -> None:
        pass


def _shown(text: str) -> str:
    """mlbuild's own ``text`` for a terminal, line by line :func:`printable`: it can name a file
    whose name holds an escape sequence (a FIFO named to recolour or clear the terminal)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def summary_line(summary: RunSummary) -> str:
    counts: dict[str, int] = {}
    for outcome in summary.outcomes:
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    total = len(summary.outcomes)
    return f"{total} step{'s' if total != 1 else ''}: {parts} in {summary.duration:.2f}s"


def summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "overrides": summary.overrides,
        "duration": round(summary.duration, 4),
        "ok": not summary.failed,
        "keep_going": summary.keep_going,
        "failed": [{"name": o.name, "message": o.message, "log": o.log} for o in summary.failed],
        "steps": [
            {
                "name": o.name,
                "kind": o.kind,
                "status": o.status.value,
                "duration": round(o.duration, 4),
                "reasons": o.reasons,
                "fingerprint": o.fingerprint,
                "metrics": o.metrics,
                "message": o.message,
                "log": o.log,
                "data": o.data,
            }
            for o in summary.outcomes
        ],
        "metrics": summary.metrics,
        "data": [version.to_json() for version in summary.data],
        "remote": summary.remote.to_json() if summary.remote is not None else None,
        "hashing": {
            "files_hashed": summary.hashing.files_hashed,
            "bytes_hashed": summary.hashing.bytes_hashed,
            "files_from_state": summary.hashing.files_from_state,
        },
    }


def format_metrics(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{printable(k)}={format_value(v)}" for k, v in sorted(metrics.items()))
