"""Plain output helpers that need nothing of the engine, so store commands start fast."""

from __future__ import annotations

import json
import time
from typing import Any

from mlbuild.sizes import size

__all__ = ["dump_json", "format_value", "indent", "size", "table", "when"]


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows
    ]
    return "\n".join(lines)


def dump_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str), flush=True)


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def when(stamp: float, *, seconds: bool = False) -> str:
    """A timestamp in local time, to the minute (or second)."""
    return time.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""), time.localtime(stamp))


def indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
