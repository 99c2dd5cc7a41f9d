"""Something other than a folder planted at ``.mlbuild/same-data`` (the compiled-graph reuse
pointers, mlbuild/graph/same_data.py): a symlink out of the workspace, a symlink to a file, a
file. A comment edit then `plan` and `run` neither write nor remove anything there, nor crash, nor
answer from a stale graph: the recipe compiles in full, as with no pointer."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.graph.test_paths import git_repo

RECIPE = """\
schema_version: 1
name: demo
steps:
  a: {cmd: echo a > a.txt, deps: [in.txt], outs: [a.txt]}
  b: {cmd: cat a.txt > b.txt, deps: [a.txt], outs: [b.txt]}
"""

POINTER = "0" * 64  # a pointer's name (a data key), for the planted files


def folder_out(pointers: Path, outside: Path) -> None:
    """A folder elsewhere, full of pointers: a writer would prune the oldest of 64 + 1."""
    outside.mkdir()
    for index in range(64):
        planted = outside / f"{index:064x}"
        planted.write_text("f" * 64)
        os.utime(planted, (1_000_000 + index, 1_000_000 + index))
    pointers.symlink_to(outside)


def file_out(pointers: Path, outside: Path) -> None:
    outside.write_text("the user's file\n")
    pointers.symlink_to(outside)


def a_file(pointers: Path, outside: Path) -> None:
    pointers.write_text("not a folder\n")


PLANTS: dict[str, Callable[[Path, Path], None]] = {
    "a symlink to a folder outside": folder_out,
    "a symlink to a file outside": file_out,
    "a file": a_file,
}


def tree(path: Path) -> dict[str, tuple[bytes, int] | str]:
    """What is at ``path``: each file's bytes and mtime, each symlink's target."""
    if path.is_symlink():
        return {".": f"-> {os.readlink(path)}", **tree(path.resolve())}
    if path.is_file():
        return {".": (path.read_bytes(), path.stat().st_mtime_ns)}
    if not path.is_dir():
        return {}
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.iterdir())}


@pytest.mark.parametrize("plant", PLANTS)
def test_a_comment_edit_compiles_in_full_and_touches_nothing_planted(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    assert statuses(ws.run_json()) == {"a": "ran", "b": "ran"}
    pointers = ws.root / ".mlbuild" / "same-data"
    assert [p.name for p in pointers.iterdir()] != []  # the run wrote its pointer here
    for old in pointers.iterdir():
        old.unlink()
    pointers.rmdir()
    outside = tmp_path / "outside"
    PLANTS[plant](pointers, outside)
    before = {"here": tree(pointers), "outside": tree(outside)}

    ws.recipe("# a comment\n" + RECIPE.replace("  b:", "  # the second\n  b:"))
    planned = ws.cli("plan")
    assert planned.returncode == 0, planned.stderr
    assert "0 of 2 steps will run or be restored" in planned.stdout
    assert statuses(ws.run_json()) == {"a": "cached", "b": "cached"}

    # the data changed with the comments: the answer is the new recipe's, never a stale graph
    ws.recipe("# a comment\n" + RECIPE.replace("cat a.txt", "cat  a.txt"))
    assert statuses(ws.run_json()) == {"a": "cached", "b": "ran"}
    # an error after a comment edit names the line the step is on now
    (ws.root / "in.txt").unlink()
    ws.recipe("# one\n# two\n" + RECIPE.replace("cat a.txt", "cat  a.txt"))
    done = ws.cli("plan")
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("mlbuild: ml.yaml:6:35: steps.a.deps[0]: 'in.txt' does not"), (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert {"here": tree(pointers), "outside": tree(outside)} == before


@pytest.mark.parametrize("plant", ["a FIFO", "a symlink to a file outside"])
def test_a_pointer_planted_in_the_folder_is_neither_waited_on_nor_followed(
    ws: Workspace, tmp_path: Path, plant: str
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    (pointer,) = (ws.root / ".mlbuild" / "same-data").iterdir()  # the data a comment edit keeps
    pointer.unlink()
    outside = tmp_path / "outside"
    outside.write_text(pointer.name)  # not even a name it would take (the entry's)
    if plant == "a FIFO":
        os.mkfifo(pointer)
    else:
        pointer.symlink_to(outside)

    ws.recipe("# a comment\n" + RECIPE)
    planned = ws.cli("plan", timeout=60)  # reading a FIFO with no writer waits for ever
    assert planned.returncode == 0, planned.stderr
    assert "0 of 2 steps will run or be restored" in planned.stdout
    assert outside.read_text() == pointer.name
