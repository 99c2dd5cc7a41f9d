"""Which runs ``runs list`` wants: conditions on params, metrics and tags, and the sort order.

Conditions are written ``KEY OP VALUE`` on the command line (``train.lr=0.01``,
``accuracy>=0.9``); a value that reads as a number is compared as a number.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from mlbuild.errors import UsageError

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
_CONDITION = re.compile(r"^(?P<key>[^<>=!]+?)\s*(?P<op><=|>=|!=|=|<|>)\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Condition:
    """``key op value``; ``value`` is the text as written."""

    key: str
    op: str
    value: str

    @property
    def number(self) -> float | None:
        """The value as a number, if it reads as one (``0.1``, ``1e-3``, ``10``)."""
        return as_number(self.value)


@dataclass(frozen=True)
class RunQuery:
    """A filter and an order over the store's runs. ``limit`` None means every match."""

    params: list[Condition] = field(default_factory=list)
    metrics: list[Condition] = field(default_factory=list)
    tags: list[Condition] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    commit: str | None = None
    kind: str | None = None
    sort: str = "started"  # started, duration, or a metric name
    descending: bool = True
    limit: int | None = 50
    # False leaves out no-op runs: finished runs whose every step was a cache hit (listing.py)
    include_noop: bool = True


def parse_condition(text: str, option: str) -> Condition:
    """``"accuracy>=0.9"`` → ``Condition("accuracy", ">=", "0.9")``; a bad one is a UsageError."""
    match = _CONDITION.match(text.strip())
    if match is None or not match["key"].strip():
        raise UsageError(
            f"{option} {text!r}: expected KEY OP VALUE with OP one of {' '.join(OPERATORS)} "
            f"(for example {option} {'train.lr=0.01' if option == '--param' else 'accuracy>=0.9'})"
        )
    return Condition(match["key"].strip(), match["op"], match["value"].strip())


def parse_tag_condition(text: str) -> Condition:
    """``key=value`` matches that value; a bare ``key`` matches any run carrying the tag."""
    if "=" not in text:
        return Condition(text.strip(), "exists", "")
    key, _, value = text.partition("=")
    return Condition(key.strip(), "=", value.strip())


def parse_sort(text: str) -> tuple[str, bool]:
    """``"accuracy"`` or ``"accuracy:desc"`` → (key, descending); descending is the default."""
    key, _, direction = text.partition(":")
    if direction not in ("", "asc", "desc") or not key:
        raise UsageError(
            f"--sort {text!r}: expected KEY, KEY:asc or KEY:desc, where KEY is started, "
            "duration or a metric name"
        )
    return key, direction != "asc"


def as_number(value: object) -> float | None:
    """``value`` as a finite float when it is (or reads as) a number; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def as_text(value: object) -> str:
    """How a param or metric value is stored for equality: strings as-is, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
