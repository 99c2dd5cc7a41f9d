"""What a step's own code calls during a search: ``mlbuild.report(value, step=i)``.

Standard library only, and cheap to import: it runs inside the user's training loop. During a
trial, mlbuild names a Unix socket in ``MLBUILD_REPORT``; each report is one JSON line sent to it
and answered with the pruner's decision (``mlbuild/search/channel.py`` is the other end). When the
pruner says stop, :func:`report` raises :class:`TrialPruned`, which ends the step's process with
exit code 1 — a pruned trial must not look like a finished step whose outputs get cached. Outside
a trial (``mlbuild run``, or plain ``python train.py``) a report does nothing.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys

REPORT_ENV = "MLBUILD_REPORT"
_TIMEOUT = 60.0  # seconds for an answer; the pruner reads the study's storage, which may be remote
_warned: list[str] = []  # the first failure to reach the trial, warned about once


class TrialPruned(SystemExit):
    """The pruner stopped this trial. A ``SystemExit``, so that a training loop's ``except
    Exception`` does not swallow it and the process ends (exit code 1) with the message."""


def report(value: float, step: int) -> None:
    """Tell the running trial the objective's intermediate ``value`` after ``step`` (an epoch, an
    iteration); raise :class:`TrialPruned` if its pruner decides the trial is hopeless."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"mlbuild.report: value must be a finite number, got {value!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"mlbuild.report: step must be a whole number >= 0, got {step!r}")
    address = os.environ.get(REPORT_ENV)
    if not address:
        return
    answer = _ask(address, {"value": float(value), "step": step})
    if answer is None:
        return
    if answer.get("error"):
        raise ValueError(f"mlbuild.report: {answer['error']}")
    if answer.get("prune"):
        raise TrialPruned(f"mlbuild: trial pruned at step {step} (value {value})")


def _ask(address: str, message: dict[str, object]) -> dict[str, object] | None:
    """Send one report and read the answer; a trial that went away is warned about once."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(_TIMEOUT)
            conn.connect(address)
            conn.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        answer = json.loads(data) if data else None
        return answer if isinstance(answer, dict) else None
    except (OSError, ValueError) as exc:
        if not _warned:
            _warned.append(str(exc))
            print(f"mlbuild.report: the trial did not answer ({exc}); going on", file=sys.stderr)
        return None
