"""The action cache's folder replaced mid-run, by a step, with a symlink out of the workspace
(mlbuild/cache/actions.py). Workspace.ensure_meta refuses it when a command starts; each entry
written checks the folders from the cache's root down (the cache may live under
MLBUILD_CACHE_DIR): the step fails naming the path, nothing is written outside."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Workspace
from tests.graph.test_meta_planted import listing
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_an_actions_folder_a_step_replaces_by_a_symlink_out_is_not_written_through(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "user.txt").write_text("the user's file\n")
    plant = f"rm -rf .mlbuild/cache/actions && ln -s {outside} .mlbuild/cache/actions"
    git_repo(ws.recipe(RECIPE.replace("echo a > a.txt", f"echo a > a.txt && {plant}")))
    ws.gen({"in.txt": "1\n"})
    before = listing(outside)

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    actions = ws.root / ".mlbuild" / "cache" / "actions"
    assert f"{actions} is a symlink to {outside}, not what mlbuild keeps" in done.stdout
    assert listing(outside) == before
