"""A FIFO, or a symlink to a file out of the workspace, planted as a step's record in
``.mlbuild/steps`` (mlbuild/graph/records.py): `plan`, `run` and `gc` neither wait on it for ever
nor follow it; the step reads as never recorded, and its next run's record replaces the plant,
not what the plant points to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


@pytest.mark.parametrize("name", ["a.json", "a.deps.json"])
@pytest.mark.parametrize("plant", ["a FIFO", "a symlink to a file outside"])
def test_a_planted_step_record_is_neither_waited_on_nor_followed(
    ws: Workspace, tmp_path: Path, plant: str, name: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    record = ws.root / ".mlbuild" / "steps" / name
    outside = tmp_path / "outside.json"
    outside.write_text(record.read_text() if record.exists() else "{}")
    kept = outside.read_text()
    record.unlink(missing_ok=True)
    if plant == "a FIFO":
        os.mkfifo(record)
    else:
        record.symlink_to(outside)
    (ws.root / "in.txt").write_text("2\n")

    for command in ("plan", "run", "gc"):
        done = ws.cli(command, timeout=60)  # reading a FIFO with no writer waits for ever
        assert done.returncode == 0, (command, done.stderr)
    assert outside.read_text() == kept
