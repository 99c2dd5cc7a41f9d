"""What a test concluded: passed or not, one line why, the details, and what it measured.

A verdict is kept in the action cache under the test's fingerprint and read back by later runs
and by the release gate, so it is plain JSON and checked when read: a damaged entry is a miss
(the test runs again), never a crash or a pass it did not earn.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_DETAILS = 50  # failing cases listed in full; the rest are counted
Measured = dict[str, float | int | str | bool | None]
CASE_STATUSES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class CaseResult:
    """One case of a test that has its own cases (the pytest kind): as a JUnit testcase."""

    name: str
    classname: str
    status: str  # one of CASE_STATUSES
    message: str = ""
    time: float = 0.0


@dataclass(frozen=True)
class Verdict:
    passed: bool
    summary: str  # one line: "accuracy 0.947 >= 0.9", "2 of 38 cases wrong"
    details: list[str] = field(default_factory=list)  # more lines: each failure, located
    measured: Measured = field(default_factory=dict)  # recorded on the run as metrics
    cases: list[CaseResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> Verdict:
        """The verdict ``raw`` holds; :class:`ValueError` saying what is wrong with a bad one."""
        if not isinstance(raw, dict) or set(raw) != {
            "passed",
            "summary",
            "details",
            "measured",
            "cases",
        }:
            raise ValueError("expected an object with passed, summary, details, measured, cases")
        if not isinstance(raw["passed"], bool) or not isinstance(raw["summary"], str):
            raise ValueError("passed: expected true or false; summary: expected a string")
        if not isinstance(raw["details"], list) or not all(
            isinstance(d, str) for d in raw["details"]
        ):
            raise ValueError("details: expected a list of strings")
        measured = raw["measured"]
        if not isinstance(measured, dict) or not all(
            isinstance(k, str) and _is_scalar(v) for k, v in measured.items()
        ):
            raise ValueError("measured: expected an object of numbers, strings and booleans")
        if not isinstance(raw["cases"], list):
            raise ValueError("cases: expected a list")
        return cls(raw["passed"], raw["summary"], raw["details"], measured, _cases(raw["cases"]))


def capped(lines: list[str], total: int | None = None) -> list[str]:
    """The first :data:`MAX_DETAILS` of ``lines``, and how many more there are."""
    total = len(lines) if total is None else total
    shown = lines[:MAX_DETAILS]
    if total > len(shown):
        shown.append(f"... and {total - len(shown)} more")
    return shown


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)


def _cases(raw: list[Any]) -> list[CaseResult]:
    cases = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {
            "name",
            "classname",
            "status",
            "message",
            "time",
        }:
            raise ValueError("cases: expected objects with name, classname, status, message, time")
        if item["status"] not in CASE_STATUSES:
            raise ValueError(f"cases: unknown status {str(item['status'])[:20]!r}")
        strings = (item["name"], item["classname"], item["message"])
        if not all(isinstance(s, str) for s in strings) or not _is_number(item["time"]):
            raise ValueError("cases: name, classname, message are strings; time a number")
        cases.append(CaseResult(**item))
    return cases


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
