"""A dataset holding a tree deeper than PATH_MAX is the dataset's error, naming it, not an
internal error: `plan` and `data status` crashed with OSError ENAMETOOLONG (exit 3), and `run`
failed the step with a message of many kilobytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.data.test_dvc import dvc, git_dvc_repo, sh
from tests.graph.test_deep_dep import make_deep, remove_deep

pytestmark = pytest.mark.slow

RECIPE = """\
schema_version: 1
name: demo
data:
  images: {path: data/images}
steps:
  listing: {cmd: ls data/images > listing.txt, deps: ["data:images"], outs: [listing.txt]}
"""


@pytest.fixture
def repo(ws: Workspace, tmp_path: Path) -> Iterator[Workspace]:
    git_dvc_repo(ws.root, tmp_path / "remote")
    (ws.root / "data/images").mkdir(parents=True)
    (ws.root / "data/images/a.png").write_bytes(b"png")
    dvc(ws.root, "add", "-q", "data/images")
    ws.recipe(RECIPE)
    sh(ws.root, "git", "add", "-A")
    sh(ws.root, "git", "commit", "-qm", "data")
    first = ws.cli("run")
    assert first.returncode == 0, first.stderr
    make_deep(ws.root / "data/images/deep")
    yield ws
    remove_deep(ws.root / "data/images/deep")


NAMED = "dataset 'images' cannot be read: File name too long (data/images/deep/dd/dd/"


def test_a_dataset_deeper_than_path_max_is_the_datasets_error(repo: Workspace) -> None:
    for command in (["plan"], ["data", "status"]):
        done = repo.cli(*command, timeout=60)
        assert done.returncode == 1, (command, done.stderr)
        assert f"mlbuild: {NAMED}" in done.stderr
        assert "internal error" not in done.stderr
        assert len(done.stderr) < 1000
    run = repo.cli("run", timeout=60)
    assert run.returncode == 1, run.stderr
    assert f"listing: FAILED: {NAMED}" in run.stdout
    assert "listing: cached" not in run.stdout
