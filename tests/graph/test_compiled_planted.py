"""Something other than a folder planted at ``.mlbuild/compiled`` (the compiled graphs,
mlbuild/graph/compiled.py): a symlink out of the workspace, a symlink to a file, a file. `plan`,
`run` and `gc` neither write nor remove anything there, nor crash, nor answer from a graph read
there: the recipe compiles in full each time, as with no entry. An entry planted in the real
folder (a FIFO, a symlink out) is neither waited on nor followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import PLANTS, RECIPE, tree


def many_entries(compiled: Path, outside: Path) -> None:
    """A folder elsewhere holding 64 entry-like files: a writer would prune the oldest."""
    outside.mkdir()
    for index in range(64):
        planted = outside / f"{index:064x}.json"
        planted.write_text("{}")
        os.utime(planted, (1_000_000 + index, 1_000_000 + index))
    compiled.symlink_to(outside)


@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_compiled_folder_is_neither_written_nor_pruned(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    assert statuses(ws.run_json()) == {"a": "ran", "b": "ran"}
    compiled = ws.root / ".mlbuild" / "compiled"
    for old in compiled.iterdir():
        old.unlink()
    compiled.rmdir()
    outside = tmp_path / "outside"
    if plant == "a symlink to a folder outside":
        many_entries(compiled, outside)
    else:
        PLANTS[plant](compiled, outside)
    before = {"here": tree(compiled), "outside": tree(outside)}

    ws.recipe("# a comment\n" + RECIPE)
    planned = ws.cli("plan")
    assert planned.returncode == 0, planned.stderr
    assert "0 of 2 steps will run or be restored" in planned.stdout
    assert statuses(ws.run_json()) == {"a": "cached", "b": "cached"}
    # a changed step is seen: the graph is the recipe's as it is now
    ws.recipe("# a comment\n" + RECIPE.replace("cat a.txt", "cat  a.txt"))
    assert statuses(ws.run_json()) == {"a": "cached", "b": "ran"}
    done = ws.cli("gc")
    assert done.returncode == 0, done.stderr
    assert {"here": tree(compiled), "outside": tree(outside)} == before


@pytest.mark.parametrize("plant", ["a FIFO", "a symlink to an entry outside"])
def test_an_entry_planted_in_the_folder_is_neither_waited_on_nor_followed(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    (entry,) = (ws.root / ".mlbuild" / "compiled").glob("*.json")  # the recipe's, as it is
    outside = tmp_path / "outside.json"
    # the same entry, but b's command is another: followed, `run` would run it
    outside.write_text(entry.read_text().replace("cat a.txt > b.txt", "echo planted > b.txt"))
    assert "echo planted" in outside.read_text()
    entry.unlink()
    if plant == "a FIFO":
        os.mkfifo(entry)
    else:
        entry.symlink_to(outside)

    planned = ws.cli("plan", timeout=60)  # reading a FIFO with no writer waits for ever
    assert planned.returncode == 0, planned.stderr
    assert "0 of 2 steps will run or be restored" in planned.stdout
    assert statuses(ws.run_json()) == {"a": "cached", "b": "cached"}
    assert ws.read("b.txt") == "a\n"
