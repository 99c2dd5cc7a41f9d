"""A symlink to a user's file outside the workspace, or a hardlink to one, planted as the
workspace's run store ``.mlbuild/runs.db`` (mlbuild/store/__init__.py): SQLite follows a symlink
and writes a file in place, so `runs list` refuses it by name instead of moving the run journal
into the user's file (or listing the runs a planted store holds)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


@pytest.mark.parametrize("plant", ["a symlink to a file outside", "a hardlink"])
def test_a_planted_run_store_is_refused_by_name(ws: Workspace, tmp_path: Path, plant: str) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    store = ws.root / ".mlbuild" / "runs.db"
    store.unlink(missing_ok=True)
    outside = tmp_path / "users.db"
    outside.write_bytes(b"")  # SQLite takes an empty file for an empty database
    if plant == "a hardlink":
        os.link(outside, store)
    else:
        store.symlink_to(outside)

    done = ws.cli("runs", "list", timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{store} is a " in done.stderr and "remove it" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert outside.read_bytes() == b""
    store.unlink()
    done = ws.cli("runs", "list", timeout=60)  # the journal is still there to move in
    assert done.returncode == 0 and "finished" in done.stdout, (done.stdout, done.stderr)


def test_gc_does_not_open_a_planted_run_store(ws: Workspace, tmp_path: Path) -> None:
    # gc reads the model versions of every registered workspace's store, its own included
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    store = ws.root / ".mlbuild" / "runs.db"
    store.unlink(missing_ok=True)
    outside = tmp_path / "users.db"
    outside.write_bytes(b"")
    store.symlink_to(outside)

    done = ws.cli("gc", timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{store} is a symlink to {outside}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert outside.read_bytes() == b""
