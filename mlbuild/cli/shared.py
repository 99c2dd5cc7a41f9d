"""Helpers more than one command module needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlbuild.errors import UsageError

META_DIR = ".mlbuild"  # mlbuild.graph.META_DIR, named here so store commands skip the engine


def open_workspace_store(ws: Any) -> Any:
    """The run store of workspace ``ws`` (``MLBUILD_STORE``, else ``.mlbuild/runs.db``)."""
    from mlbuild.store import open_store, store_url

    ws.ensure_meta()
    return open_store(store_url(ws.meta))


def open_store_here(recipe: str | None) -> Any:
    """The run store of the workspace around the current directory, found without loading the
    engine; with ``MLBUILD_STORE`` set, no workspace is needed at all."""
    from mlbuild.recipe import RECIPE_FILE
    from mlbuild.store import STORE_ENV, open_store, store_url

    start = Path.cwd()
    if recipe is not None:
        meta: Path | None = Path(recipe).absolute().parent / META_DIR
    else:
        found = (f for f in [start, *start.parents] if (f / RECIPE_FILE).is_file())
        meta = next((f / META_DIR for f in found), None)
    if meta is None:
        if not os.environ.get(STORE_ENV):
            from mlbuild.graph import Workspace

            Workspace.find(start)  # raises the usual "no ml.yaml" error
        meta = start / META_DIR
    elif not (meta / ".gitignore").exists():  # a first command in a fresh workspace: rare
        from mlbuild.graph import Workspace

        Workspace.find(meta.parent).ensure_meta()
    return open_store(store_url(meta))


def parse_assignments(items: list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; anything else is a UsageError."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        found[key.strip()] = value
    return found
