"""Cells of a test file as values of a tensor datatype, without numpy: the pre-flight checks read
every file before any test runs, and a cached test run must not load the model's libraries.

A CSV cell is text, parsed by the datatype; a JSON Lines value is already typed and must have the
right JSON type. An empty CSV cell or a missing/``null`` JSON value is "no value" (``None``).
The messages say what the datatype needs and what the cell holds; callers add where it is.
"""

from __future__ import annotations

import math
from typing import Any

_INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


def is_numeric(datatype: str) -> bool:
    """An integer or float datatype: one that has an order, a difference and a mean."""
    return datatype in _INT_RANGES or datatype.startswith("FP")


def expected_words(datatype: str) -> str:
    """What a value of ``datatype`` looks like, for messages: ``an integer (INT64)``."""
    if datatype == "BYTES":
        return "a string (BYTES)"
    if datatype == "BOOL":
        return "true, false, 1 or 0 (BOOL)"
    if datatype in _INT_RANGES:
        return f"an integer ({datatype})"
    return f"a number ({datatype})"


def parse_value(raw: Any, datatype: str, *, from_text: bool) -> Any:
    """``raw`` as a Python value of ``datatype`` (``None`` for no value); :class:`ValueError`
    with a message otherwise. ``from_text``: ``raw`` is a CSV cell."""
    if raw is None or (from_text and raw == ""):
        return None
    if from_text:
        return _from_text(raw, datatype)
    return _from_json(raw, datatype)


def _from_text(text: str, datatype: str) -> Any:
    if datatype == "BYTES":
        return text
    stripped = text.strip()
    if datatype == "BOOL":
        if stripped.lower() in _BOOL_TEXT:
            return _BOOL_TEXT[stripped.lower()]
        raise ValueError(_wrong(text, datatype))
    if datatype in _INT_RANGES:
        try:
            value = int(stripped)
        except ValueError:
            raise ValueError(_wrong(text, datatype)) from None
        return _in_range(value, datatype)
    try:
        number = float(stripped)
    except ValueError:
        raise ValueError(_wrong(text, datatype)) from None
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number ({datatype}), got {_show(text)}")
    return number


def _from_json(value: Any, datatype: str) -> Any:
    if datatype == "BYTES":
        if isinstance(value, str):
            return value
    elif datatype == "BOOL":
        if isinstance(value, bool):
            return value
    elif datatype in _INT_RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            return _in_range(value, datatype)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number ({datatype}), got {value}")
        return float(value)
    raise ValueError(_wrong(value, datatype))


def _in_range(value: int, datatype: str) -> int:
    low, high = _INT_RANGES[datatype]
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range for {datatype} ({low} to {high})")
    return value


def _wrong(value: Any, datatype: str) -> str:
    return f"expected {expected_words(datatype)}, got {_show(value)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
