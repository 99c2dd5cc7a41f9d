"""The fence is swept once per command on a fresh compile: the compiler has just checked every
recipe path, so the command's ``check_inputs`` trusts that sweep — once, for that graph and that
fence only. Every other check (a second one, a graph read from the compiled cache, a copy, another
fence) looks at the filesystem again."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.errors import RecipeError
from mlbuild.graph.workspace import Workspace
from mlbuild.paths import Fence

RECIPE = """\
schema_version: 1
name: demo
steps:
  make:
    cmd: "echo made > data/made.txt"
    outs: [data/made.txt]
"""

REFUSED = "steps.make.outs[0]: 'data/made.txt' resolves through the symlink 'data'"


@pytest.fixture
def sweeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every path the fence checks (a spy around the real check, which still answers)."""
    seen: list[str] = []
    real = Fence.check

    def check(self: Fence, raw: str, *, writes: bool) -> str:
        seen.append(raw)
        return real(self, raw, writes=writes)

    monkeypatch.setattr(Fence, "check", check)
    yield seen


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "ml.yaml").write_text(RECIPE)
    return Workspace.find(root)


def link_out(ws: Workspace, tmp_path: Path) -> None:
    """``data/`` replaced by a symlink out of the workspace."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.root / "data").rmdir()
    (ws.root / "data").symlink_to(outside)


def test_a_fresh_compile_is_not_swept_again_by_the_same_commands_check(
    space: Workspace, sweeps: list[str]
) -> None:
    graph = space.graph([])
    assert sweeps == ["data/made.txt"]  # the compiler's sweep
    space.check(graph)
    assert sweeps == ["data/made.txt"]


def test_the_second_check_of_a_fresh_graph_sees_a_symlink_made_since(
    space: Workspace, sweeps: list[str], tmp_path: Path
) -> None:
    graph = space.graph([])
    space.check(graph)
    link_out(space, tmp_path)
    with pytest.raises(RecipeError) as caught:
        space.check(graph)
    assert REFUSED in str(caught.value)


def test_a_graph_from_the_compiled_cache_is_swept(
    space: Workspace, sweeps: list[str], tmp_path: Path
) -> None:
    space.graph([])  # compiled and cached
    link_out(space, tmp_path)
    cached = space.graph([])
    assert sweeps == ["data/made.txt"]  # read back, not compiled
    with pytest.raises(RecipeError) as caught:
        space.check(cached)
    assert REFUSED in str(caught.value)


def test_a_copy_of_a_fresh_graph_is_swept(
    space: Workspace, sweeps: list[str], tmp_path: Path
) -> None:
    graph = space.graph([])
    link_out(space, tmp_path)
    with pytest.raises(RecipeError) as caught:
        space.check(dataclasses.replace(graph, isolated=True))
    assert REFUSED in str(caught.value)


def test_a_fresh_graph_checked_with_another_fence_is_swept(
    space: Workspace, sweeps: list[str], tmp_path: Path
) -> None:
    from mlbuild.graph.checks import path_problems

    graph = space.graph([])
    link_out(space, tmp_path)
    other = graph.fence(space.root, tmp_path / "another-cache")
    problems = path_problems(graph, other)
    assert [p.message for p in problems] == [
        "'data/made.txt' resolves through the symlink 'data' to "
        f"'{tmp_path / 'outside' / 'made.txt'}', which is outside the repository "
        f"({space.root}); use a path inside it, or replace the symlink with a real directory"
    ]
