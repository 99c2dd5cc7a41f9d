"""A FIFO, a symlink to a file out of the workspace, or a hardlink to a user's file, planted
as one of the files a run keeps in ``.mlbuild/``: the run lock (mlbuild/exec/lock.py), the
ownership ledger (mlbuild/exec/ownership.py), a step's log (mlbuild/exec/lines.py). A run
neither waits on it for ever nor writes through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def plant(path: Path, outside: Path, kind: str) -> None:
    outside.write_text("the user's file\n")
    path.unlink(missing_ok=True)
    if kind == "a FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to(outside)


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink to a file outside"])
def test_a_planted_run_lock_is_refused_by_name(ws: Workspace, tmp_path: Path, kind: str) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    lock = ws.root / ".mlbuild" / "run.lock"
    outside = tmp_path / "outside.txt"
    plant(lock, outside, kind)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{lock} is a " in done.stderr and "remove it" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert outside.read_text() == "the user's file\n"  # the holder's pid was not written there


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink to a file outside"])
def test_a_planted_ledger_is_neither_waited_on_nor_written_through(
    ws: Workspace, tmp_path: Path, kind: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    ledger = ws.root / ".mlbuild" / "owned.json"
    outside = tmp_path / "outside.json"
    plant(ledger, outside, kind)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", "--json", timeout=60)  # reading a FIFO with no writer waits for ever
    assert done.returncode == 0, done.stderr
    assert outside.read_text() == "the user's file\n"
    assert statuses(ws.run_json()) == {"a": "cached", "b": "cached"}


@pytest.mark.parametrize("kind", ["a FIFO", "a symlink to a file outside"])
def test_a_planted_step_log_is_replaced_not_written_through(
    ws: Workspace, tmp_path: Path, kind: str
) -> None:
    git_repo(ws.recipe(RECIPE.replace("echo a > a.txt", "echo said && echo a > a.txt")))
    ws.gen({"in.txt": "1\n"}).run_json()
    log = ws.root / ".mlbuild" / "logs" / "a.log"
    outside = tmp_path / "outside.txt"
    plant(log, outside, kind)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", timeout=60)  # opening a FIFO with no reader to write waits for ever
    assert done.returncode == 0, done.stderr
    assert outside.read_text() == "the user's file\n"
    assert not log.is_symlink() and log.read_text() == "said\n"


def test_a_run_lock_hardlinked_to_a_users_file_is_refused_by_name(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    lock = ws.root / ".mlbuild" / "run.lock"
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's file\n")
    lock.unlink()
    os.link(outside, lock)  # as a step could: a name of the user's file, written in place
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{lock} is a file with 1 other hard link(s) elsewhere" in done.stderr, done.stderr
    assert "remove it" in done.stderr and "Traceback" not in done.stderr
    assert outside.read_text() == "the user's file\n"  # neither emptied nor the holder's pid


def test_a_log_hardlinked_to_a_users_file_is_replaced_not_written_through(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE.replace("echo a > a.txt", "echo a > a.txt; echo logged")))
    ws.gen({"in.txt": "1\n"})
    ws.run_json()
    log = ws.root / ".mlbuild" / "logs" / "a.log"
    outside = tmp_path / "outside.txt"
    outside.write_text("the user's file\n")
    log.unlink()
    os.link(outside, log)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", timeout=60)
    assert done.returncode == 0, done.stderr
    assert outside.read_text() == "the user's file\n"
    assert "logged" in log.read_text() and log.stat().st_nlink == 1
