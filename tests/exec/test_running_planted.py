"""Something other than mlbuild's folder planted at ``.mlbuild/running`` (the records of the
steps a run has started, mlbuild/exec/leftovers.py): a symlink to a folder out of the workspace,
a symlink to a file, a file. A run, which removes the records a killed run left there, refuses by
name before it starts anything: it neither removes nor writes anything through it. A record
planted in the real folder (a FIFO, a symlink out) is neither waited on nor followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import PLANTS, RECIPE, tree


def records_out(running: Path, outside: Path) -> None:
    """A folder elsewhere holding the user's *.json files, the records' pattern."""
    outside.mkdir()
    for index in range(8):
        (outside / f"user-{index}.json").write_text('{"step": "a", "pid": 1, "process": ""}')
    running.symlink_to(outside)


@pytest.mark.parametrize("plant", PLANTS)
def test_a_run_refuses_a_planted_running_folder_by_name(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    running = ws.root / ".mlbuild" / "running"
    running.rmdir()  # empty after a run
    outside = tmp_path / "outside"
    if plant == "a symlink to a folder outside":
        records_out(running, outside)
    else:
        PLANTS[plant](running, outside)
    before = {"here": tree(running), "outside": tree(outside)}
    (ws.root / "in.txt").write_text("2\n")
    made = (ws.root / "a.txt").stat().st_mtime_ns

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{running} is a " in done.stderr, done.stderr
    assert "remove it" in done.stderr and "Traceback" not in done.stderr
    assert (ws.root / "a.txt").stat().st_mtime_ns == made  # nothing ran
    assert {"here": tree(running), "outside": tree(outside)} == before
    planned = ws.cli("plan")  # plan only reads: it still answers
    assert planned.returncode == 0, planned.stderr


@pytest.mark.parametrize("plant", ["a FIFO", "a symlink to a file outside"])
def test_a_record_planted_in_the_folder_is_neither_waited_on_nor_followed(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    record = ws.root / ".mlbuild" / "running" / "a.json"
    outside = tmp_path / "outside.json"
    outside.write_text("the user's file\n")
    if plant == "a FIFO":
        os.mkfifo(record)
    else:
        record.symlink_to(outside)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", "--json", timeout=60)  # reading a FIFO with no writer waits for ever
    assert done.returncode == 0, done.stderr
    assert outside.read_text() == "the user's file\n"
    assert statuses(ws.run_json()) == {"a": "cached", "b": "cached"}
