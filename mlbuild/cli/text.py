"""Plain output helpers that need nothing of the engine, so store commands start fast."""

from __future__ import annotations

import json
import time
from typing import Any

from mlbuild.sizes import size

__all__ = ["dump_json", "format_value", "indent", "printable", "size", "table", "when"]


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\x1b``, ``\\n``).

    Metric names, param values and run notes come from files steps write; printed raw, an escape
    sequence could recolour or clear the terminal and a newline could forge a line of the table.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table; cells are shown :func:`printable`."""
    cells = [[printable(str(c)) for c in row] for row in [headers, *rows]]
    widths = [max(len(c) for c in col) for col in zip(*cells, strict=False)]
    # the last cell is not padded: its padding is stripped anyway, and padding every row to
    # the widest last cell (a reason naming 1,000 deps) made the table quadratic in the steps
    widths[-1:] = [0]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells
    )


def dump_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str), flush=True)


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else printable(str(value))


def when(stamp: float, *, seconds: bool = False) -> str:
    """A timestamp in local time, to the minute (or second)."""
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.localtime(stamp))


def indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
