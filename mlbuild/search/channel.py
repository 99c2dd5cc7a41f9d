"""The trial's end of ``mlbuild.report``: a Unix socket the step's process sends its intermediate
values to, answered with the pruner's decision (see ``mlbuild/reporting.py`` for the protocol).

A socket rather than a file: the step waits for the answer, so a trial is stopped at the step the
pruner judged, not a few epochs later. The socket lives in a private temporary directory (mode
0700) so no other user can report into a trial; a message is one JSON line of at most 4 KiB.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlbuild.reporting import REPORT_ENV

_MAX_LINE = 4096

# (value, step) → prune?; raises ValueError for a report the trial cannot take
Judge = Callable[[float, int], bool]


class ReportChannel:
    """Listens while a trial's steps run; :meth:`attach` points it at the current trial."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="mlbuild-trial-"))  # 0700
        self.address = str(self._dir / "report.sock")
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.address)
        self._server.listen(8)
        self._lock = threading.Lock()
        self._judge: Judge | None = None
        self.pruned_at: int | None = None
        self.reports = 0
        self._thread = threading.Thread(target=self._serve, name="mlbuild-report", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def attach(self, judge: Judge) -> Iterator[None]:
        """Route reports to ``judge`` and name the socket in the environment the steps inherit."""
        with self._lock:
            self._judge, self.pruned_at, self.reports = judge, None, 0
        previous = os.environ.get(REPORT_ENV)
        os.environ[REPORT_ENV] = self.address
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(REPORT_ENV, None)
            else:
                os.environ[REPORT_ENV] = previous
            with self._lock:
                self._judge = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                line = _read_line(conn)
                conn.sendall(json.dumps(self._decide(line)).encode() + b"\n")
            except OSError:
                return

    def _decide(self, line: bytes) -> dict[str, Any]:
        try:
            message = json.loads(line)
            value, step = message["value"], message["step"]
        except (ValueError, TypeError, KeyError):
            return {"error": 'a report is one JSON line {"value": number, "step": integer}'}
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or isinstance(step, bool)
            or not isinstance(step, int)
            or step < 0
        ):
            return {"error": f"expected a finite value and a step >= 0, got {value!r}, {step!r}"}
        with self._lock:  # one report at a time: the study's storage is written in order
            if self._judge is None:
                return {"prune": False}
            self.reports += 1
            try:
                prune = self._judge(float(value), step)
            except ValueError as exc:
                return {"error": str(exc)}
            if prune and self.pruned_at is None:
                self.pruned_at = step
            return {"prune": prune}


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) <= _MAX_LINE:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0][:_MAX_LINE]
