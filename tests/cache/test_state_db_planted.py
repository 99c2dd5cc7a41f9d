"""A symlink to a user's file outside the workspace, a hardlink to one, or a folder, planted at
``.mlbuild/state.db`` or ``.mlbuild/entries.db`` (the file hashes, mlbuild/cache/state.py; the
action entries read, mlbuild/cache/recent.py). SQLite follows a symlink and writes a file in
place: a run must neither turn the user's file into its table nor crash; it makes its own."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE

USERS = b""  # an empty file: SQLite takes it for an empty database and writes its tables


@pytest.mark.parametrize("name", ["state.db", "entries.db"])
@pytest.mark.parametrize("plant", ["a symlink to a file outside", "a hardlink", "a folder"])
def test_a_planted_table_is_not_written_through(
    ws: Workspace, tmp_path: Path, name: str, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    here = ws.root / ".mlbuild" / name
    here.unlink(missing_ok=True)
    outside = tmp_path / "users.db"
    outside.write_bytes(USERS)
    if plant == "a symlink to a file outside":
        here.symlink_to(outside)
    elif plant == "a hardlink":
        os.link(outside, here)
    else:
        here.mkdir()
        (here / "user.txt").write_text("kept\n")
    time.sleep(2.5)  # past the racy window: the hashes and entries are worth keeping

    for step_input in ("2\n", "3\n"):
        (ws.root / "in.txt").write_text(step_input)
        time.sleep(2.5)
        done = ws.cli("run", timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert outside.read_bytes() == USERS
    if plant == "a folder":
        assert (here / "user.txt").read_text() == "kept\n"
    else:  # its own table instead, not the user's file
        assert not here.is_symlink() and here.stat().st_ino != outside.stat().st_ino
        if here.exists():
            with sqlite3.connect(here) as db:
                assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] >= 1
