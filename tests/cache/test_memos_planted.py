"""A FIFO planted as one of the small files `plan` and `gc` read from ``.mlbuild``: the recipe
structure's memo (mlbuild/recipe/structure.py, ``.mlbuild/recipes``) and the cache's workspace
registration (mlbuild/cache/workspaces.py, ``.mlbuild/cache/workspaces``). Neither is waited on
for ever: the memo reads as none (the recipe is checked in full), the registration is named as
unreadable, as a damaged one is."""

from __future__ import annotations

import os

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_a_fifo_planted_as_the_recipe_memo_is_not_waited_on(ws: Workspace) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    (memo,) = (ws.root / ".mlbuild" / "recipes").iterdir()
    memo.unlink()
    os.mkfifo(memo)
    for entry in (ws.root / ".mlbuild" / "compiled").iterdir():
        entry.unlink()  # so that the recipe is compiled again, reading the memo

    done = ws.cli("plan", timeout=60)  # reading a FIFO with no writer waits for ever
    assert done.returncode == 0, done.stderr
    assert "0 of 2 steps will run or be restored" in done.stdout


def test_a_fifo_planted_as_a_workspace_registration_is_named_not_waited_on(
    ws: Workspace,
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    (registration,) = (ws.root / ".mlbuild" / "cache" / "workspaces").iterdir()
    registration.unlink()
    os.mkfifo(registration)

    done = ws.cli("gc", timeout=60)  # reading a FIFO with no writer waits for ever
    assert done.returncode == 1, done.stderr
    assert f"workspace registration {registration} is unreadable" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
