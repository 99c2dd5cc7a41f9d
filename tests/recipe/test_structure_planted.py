"""A symlink out of the workspace, or a file, planted at ``.mlbuild/recipes`` (the validated
recipes kept by structure, mlbuild/recipe/structure.py): `plan` neither writes an entry there,
nor prunes the folder's oldest ``*.json`` files, nor trusts an entry read through it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.graph.test_meta_planted import listing
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


@pytest.mark.parametrize("plant", ["a symlink to a folder outside", "a file"])
def test_a_planted_recipes_folder_is_neither_written_nor_pruned(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    here = ws.root / ".mlbuild" / "recipes"
    shutil.rmtree(here)
    outside = tmp_path / "outside"
    if plant == "a file":
        here.write_text("not a folder\n")
        outside = here
    else:
        outside.mkdir()
        for i in range(70):  # the user's own: a writer would prune the oldest to 64
            (outside / f"user{i}.json").write_text(f'{{"i": {i}}}\n')
            os.utime(outside / f"user{i}.json", (1e9, 1e9))
        here.symlink_to(outside)
    before = listing(outside)

    for edit in ("echo b > a.txt", "echo c > a.txt"):  # a new structure each time
        ws.recipe(RECIPE.replace("echo a > a.txt", edit))
        done = ws.cli("plan", timeout=60)
        assert done.returncode == 0, done.stderr
        assert "1 of 2 steps will run" in done.stdout, done.stdout
    assert listing(outside) == before
