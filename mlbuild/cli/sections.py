"""Collapsible sections in GitLab job logs: one per step of ``mlbuild run``.

GitLab folds the lines between ``\\e[0Ksection_start:TIME:NAME\\r\\e[0KHEADER`` and
``\\e[0Ksection_end:TIME:NAME\\r\\e[0K`` under HEADER, and shows the time between the two stamps.
Sections nest but must not overlap, while steps run in parallel; so one step's section is open at
a time and streams live, and the lines of steps that run alongside it wait, in order, until it
closes — then their section is written with its true start time. Cached steps get a collapsed
one-line section. Used for plain output (not a terminal) when ``GITLAB_CI=true``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlbuild.cli.output import Console, StepReporter
from mlbuild.exec import Status, StepOutcome

_COLLAPSED = (Status.CACHED, Status.RESTORED, Status.SKIPPED)


def step_reporter(console: Console, *, quiet: bool) -> StepReporter | GitLabSections:
    """Plain lines, in GitLab sections when running in a GitLab job and not on a terminal."""
    reporter = StepReporter(console, quiet=quiet)
    if os.environ.get("GITLAB_CI") == "true" and not console.is_tty:
        return GitLabSections(reporter)
    return reporter


@dataclass
class _Held:
    """A step whose section cannot open yet: when it started and what it said meanwhile."""

    started: float
    events: list[Callable[[], None]] = field(default_factory=list)
    outcome: StepOutcome | None = None


class GitLabSections:
    """A :class:`StepReporter` whose steps each print inside their own section."""

    def __init__(self, inner: StepReporter) -> None:
        self.inner = inner
        self.stream = inner.console.stream
        self.lock = threading.Lock()
        self.open: str | None = None
        self.section = ""
        self.held: dict[str, _Held] = {}
        self.count = 0

    def step_started(self, name: str, reasons: list[str]) -> None:
        with self.lock:
            if self.open is None:
                self._start(name, time.time(), collapsed=False)
                self.inner.step_started(name, reasons)
            else:
                held = self.held.setdefault(name, _Held(time.time()))
                held.events.append(lambda: self.inner.step_started(name, reasons))

    def step_output(self, name: str, line: str) -> None:
        self._event(name, lambda: self.inner.step_output(name, line))

    def step_note(self, name: str, text: str) -> None:
        self._event(name, lambda: self.inner.step_note(name, text))

    def step_finished(self, outcome: StepOutcome) -> None:
        with self.lock:
            if self.open == outcome.name:
                self.inner.step_finished(outcome)
                self._end()
                self._release()
            elif self.open is None:  # a cached step: nothing ran, one line
                self._start(outcome.name, time.time(), collapsed=outcome.status in _COLLAPSED)
                self.inner.step_finished(outcome)
                self._end()
            else:
                self.held.setdefault(outcome.name, _Held(time.time())).outcome = outcome

    def close(self) -> None:
        with self.lock:  # interrupted or failed: every section still ends, none is lost
            while self.open is not None or self.held:
                if self.open is not None:
                    self._end()
                self._release()
        self.inner.close()

    def _event(self, name: str, emit: Callable[[], None]) -> None:
        with self.lock:
            if self.open == name:
                emit()
            else:
                self.held.setdefault(name, _Held(time.time())).events.append(emit)

    def _release(self) -> None:
        """Write the held steps, earliest first, until one is still running (it stays open)."""
        while self.open is None and self.held:
            name = min(self.held, key=lambda n: self.held[n].started)
            held = self.held.pop(name)
            collapsed = held.outcome is not None and held.outcome.status in _COLLAPSED
            self._start(name, held.started, collapsed=collapsed)
            for emit in held.events:
                emit()
            if held.outcome is not None:
                self.inner.step_finished(held.outcome)
                self._end()

    def _start(self, name: str, stamp: float, *, collapsed: bool) -> None:
        self.count += 1
        self.open = name
        # GitLab takes letters, digits, `_`, `.` and `-` in a section's name (`model:check`)
        self.section = f"mlbuild_{self.count}_{name.replace(':', '_')}"
        option = "[collapsed=true]" if collapsed else ""
        self._write(f"\x1b[0Ksection_start:{int(stamp)}:{self.section}{option}\r\x1b[0K")

    def _end(self) -> None:
        self._write(f"\x1b[0Ksection_end:{int(time.time())}:{self.section}\r\x1b[0K\n")
        self.open = None

    def _write(self, text: str) -> None:
        with self.inner.lock:
            self.stream.write(text)
            self.stream.flush()
