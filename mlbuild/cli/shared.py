"""Helpers more than one command module needs."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mlbuild.errors import UsageError
from mlbuild.paths import META_DIR

if TYPE_CHECKING:  # the engine and the store load lazily, when a command needs them
    from mlbuild.store import RunStore

_CONFIGURES_STORE = re.compile(r"^store\s*:", re.MULTILINE)


def open_store_here(recipe: str | None) -> RunStore:
    """The run store of the workspace around the current directory, found without loading the
    engine; with ``MLBUILD_STORE`` set, no workspace is needed at all."""
    from mlbuild.recipe import RECIPE_FILE
    from mlbuild.store import STORE_ENV, open_store, open_workspace_store, store_url

    start = Path.cwd()
    if os.environ.get(STORE_ENV):
        return open_store(store_url(start / META_DIR))
    path = Path(recipe).absolute() if recipe is not None else None
    if path is None:
        found = (f / RECIPE_FILE for f in [start, *start.parents] if (f / RECIPE_FILE).is_file())
        path = next(found, None)
    try:
        text = path.read_text(encoding="utf-8") if path is not None else None
    except (OSError, UnicodeDecodeError):
        text = None
    if path is None or text is None or _CONFIGURES_STORE.search(text):
        # no recipe (the usual error), or one naming its store: ask the engine
        from mlbuild.graph import Workspace

        ws = Workspace.find(start, path)
        return open_workspace_store(ws.meta, ws.graph([]).store_url)
    meta = path.parent / META_DIR
    if not (meta / ".gitignore").exists():  # a first command in a fresh workspace: rare
        from mlbuild.graph import Workspace

        Workspace.find(start, path).ensure_meta()
    return open_workspace_store(meta)


def parse_assignments(items: list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; anything else is a UsageError."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE")
        found[key.strip()] = value
    return found


def add_record_options(p: argparse.ArgumentParser) -> None:
    """The options of a command that runs steps and records a run (``run``, ``test``)."""
    p.add_argument(
        "-q", "--quiet", action="store_true", help="keep the steps' output in their logs only"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another run holds the workspace, wait for it instead of failing",
    )
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="tag the run's record (repeatable)",
    )
    p.add_argument("--note", default="", metavar="TEXT", help="a note on the run's record")
