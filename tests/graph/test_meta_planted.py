"""Something other than mlbuild's own folder planted at ``.mlbuild`` or one of the folders of
state a run writes and trusts there (step records, run journal, logs, the cache…): the folder
moved out of the workspace and a symlink left in its place, a symlink to a file, a file.
`plan`, `run` and `gc` refuse by name (mlbuild/graph/workspace.py, ``ensure_meta``): they neither
write nor remove anything through it, nor crash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def listing(path: Path) -> dict[str, tuple[bytes, int] | str]:
    """Every file under ``path`` (its bytes and mtime), or ``path`` itself when a file."""
    if path.is_file():
        return {".": (path.read_bytes(), path.stat().st_mtime_ns)}
    found: dict[str, tuple[bytes, int] | str] = {}
    for item in sorted(path.rglob("*")):
        key = str(item.relative_to(path))
        if item.is_symlink() or not item.is_file():
            found[key] = "symlink" if item.is_symlink() else "folder"
        else:
            found[key] = (item.read_bytes(), item.stat().st_mtime_ns)
    return found


FOLDERS = [".", "steps", "runs/journal", "logs", "cache", "cache/actions", "cache/workspaces"]
PLANTS = ["moved out, a symlink to it", "a symlink to a file outside", "a file"]


@pytest.mark.parametrize("plant", PLANTS)
@pytest.mark.parametrize("folder", FOLDERS)
def test_a_planted_folder_of_state_is_refused_by_name(
    ws: Workspace, tmp_path: Path, folder: str, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    here = ws.root / ".mlbuild" / folder
    outside = tmp_path / "outside"
    if plant == "moved out, a symlink to it":  # what mlbuild would happily go on using
        shutil.move(here, outside)
        here.symlink_to(outside)
    else:
        shutil.rmtree(here)
        outside.write_text("the user's file\n")
        if plant == "a file":
            here.write_text("not a folder\n")
        else:
            here.symlink_to(outside)
    before = listing(outside)
    ws.recipe("# a comment\n" + RECIPE)
    (ws.root / "in.txt").write_text("2\n")

    shown = str(here).removesuffix("/.")
    for command in ("plan", "run", "gc"):
        done = ws.cli(command, timeout=60)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert f"{shown} is a " in done.stderr and "remove it" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
        # the one supported way to keep the cache elsewhere is named where one would symlink
        hinted = "set MLBUILD_CACHE_DIR instead of a symlink" in done.stderr
        assert hinted == (folder in (".", "cache")), done.stderr
    assert listing(outside) == before


def test_a_folder_a_step_replaces_by_a_symlink_out_is_not_written_through(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "user.txt").write_text("the user's file\n")
    plant = f"rm -rf .mlbuild/steps .mlbuild/runs && ln -s {outside} .mlbuild/steps"
    plant += f" && ln -s {outside} .mlbuild/runs"
    git_repo(ws.recipe(RECIPE.replace("echo a > a.txt", f"echo a > a.txt && {plant}")))
    ws.gen({"in.txt": "1\n"})
    before = listing(outside)

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    steps = ws.root / ".mlbuild" / "steps"
    said = done.stdout + done.stderr  # the step's failure, then the run's
    assert f"a: FAILED: {steps} is a symlink to {outside}, not what mlbuild keeps" in said, said
    assert f"{ws.root / '.mlbuild' / 'runs'} is a symlink" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert listing(outside) == before  # no step record, no run journal written there


def test_a_params_folder_a_step_replaces_by_a_symlink_out_is_not_written_through(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.json").write_text("the user's file\n")
    plant = f"rm -rf .mlbuild/params && ln -s {outside} .mlbuild/params"
    git_repo(ws.recipe(RECIPE.replace("echo a > a.txt", f"echo a > a.txt && {plant}")))
    ws.gen({"in.txt": "1\n"})
    before = listing(outside)

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    params = ws.root / ".mlbuild" / "params"
    said = done.stdout + done.stderr
    assert f"b: FAILED: {params} is a symlink to {outside}, not what mlbuild keeps" in said, said
    assert listing(outside) == before  # b's params file not written there
