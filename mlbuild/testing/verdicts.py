"""Verdicts in the action cache, keyed by the test's fingerprint, and the test's step record.

A verdict lives where a step's results do — the action cache, shared through
``MLBUILD_CACHE_DIR`` — so CI jobs and laptops that share a cache share verdicts, and the gate in
a packaging job finds the verdict the test job reached. Its entry holds no outputs; the verdict
is its data. The step record (``.mlbuild/steps/test:NAME.json``) keeps the components of the last
run, to say why a test runs again, and tells ``gc`` that the entry is in use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mlbuild.cache import ActionResult
from mlbuild.graph import StepRecord, Workspace
from mlbuild.testing.verdict import Verdict

_KEY = "verdict"


@dataclass(frozen=True)
class CachedVerdict:
    verdict: Verdict
    created: float  # when it was reached
    duration: float  # how long reaching it took


def cached_verdict(ws: Workspace, fingerprint: str) -> CachedVerdict | None:
    """The verdict stored under ``fingerprint``; None when there is none or it is damaged (a
    damaged entry is moved to quarantine, and the test runs again)."""
    result = ws.cache.actions.get(fingerprint)
    if result is None:
        return None
    try:
        verdict = Verdict.from_json(result.metrics.get(_KEY))
    except ValueError:
        ws.cache.actions.discard(fingerprint)
        return None
    ws.cache.actions.touch(fingerprint)
    return CachedVerdict(verdict, result.created, result.duration)


def store_verdict(
    ws: Workspace,
    fingerprint: str,
    step: str,
    verdict: Verdict,
    duration: float,
    parts: dict[str, Any],
) -> None:
    """Keep ``verdict`` for ``fingerprint``, and the components it was reached with."""
    now = time.time()
    result = ActionResult(step, {}, {_KEY: verdict.to_json()}, duration, now)
    with ws.cache.writing():  # gc never sees the entry half-way
        ws.cache.actions.put(fingerprint, result)
    ws.records.put(StepRecord(step, fingerprint, parts, now, duration, "ran"))


def last_components(ws: Workspace, step: str) -> dict[str, Any] | None:
    """The components of the test's last run in this workspace."""
    record = ws.records.get(step)
    return record.components if record is not None else None


def note_cached(ws: Workspace, step: str, fingerprint: str, parts: dict[str, Any]) -> None:
    """Record that the test's verdict for ``fingerprint`` is the one in force here now."""
    previous = ws.records.get(step)
    if previous is not None and previous.fingerprint == fingerprint:
        return
    ws.records.put(StepRecord(step, fingerprint, parts, time.time(), 0.0, "restored"))
