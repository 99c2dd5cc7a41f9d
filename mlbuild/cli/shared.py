"""Helpers more than one command module needs."""

from __future__ import annotations

from typing import Any

from mlbuild.errors import UsageError


def open_workspace_store(ws: Any) -> Any:
    """The run store of workspace ``ws`` (``MLBUILD_STORE``, else ``.mlbuild/runs.db``)."""
    from mlbuild.store import open_store, store_url

    ws.ensure_meta()
    return open_store(store_url(ws.meta))


def parse_assignments(items: list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; anything else is a UsageError."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        found[key.strip()] = value
    return found
