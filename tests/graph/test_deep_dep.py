"""A dep folder too deep to open by path (a path below it longer than PATH_MAX) is a located
problem of the dep, not an internal error: `plan` crashed with OSError ENAMETOOLONG (exit 3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace


def make_deep(top: Path, levels: int = 2100) -> None:
    """``top/dd/dd/…/f``, made level by level through descriptors (no path is ever that long);
    2,100 levels are 6,300 bytes of path below ``top``."""
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("dd", dir_fd=fd)
        below = os.open("dd", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    try:
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    finally:
        os.close(fd)


def remove_deep(top: Path) -> None:
    """Remove what :func:`make_deep` made, level by level (pytest's clean-up recurses too deep)."""
    here = os.getcwd()
    try:
        os.chdir(top)
        levels = 0
        while os.path.isdir("dd"):
            os.chdir("dd")
            levels += 1
        os.unlink("f")
        for _ in range(levels):
            os.chdir("..")
            os.rmdir("dd")
    finally:
        os.chdir(here)


@pytest.fixture
def deep(ws: Workspace) -> Iterator[Path]:
    top = ws.root / "deep"
    make_deep(top)
    yield top
    remove_deep(top)


def test_a_dep_folder_deeper_than_path_max_is_named_at_the_dep(ws: Workspace, deep: Path) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: deep
        steps:
          s: {cmd: find deep > n.txt, deps: [deep], outs: [n.txt]}
        """
    )
    plan = ws.cli("plan")
    assert plan.returncode == 2, plan.stderr
    assert "ml.yaml:4:38: steps.s.deps[0]: 'deep' cannot be read: File name too long (" in (
        plan.stderr
    )
    assert "internal error" not in plan.stderr
    assert len(plan.stderr) < 1000  # the path is shortened
    run = ws.cli("run")
    assert run.returncode == 1, run.stderr
    assert "s: FAILED: ml.yaml:4:38: steps.s.deps[0]: 'deep' cannot be read" in run.stdout
