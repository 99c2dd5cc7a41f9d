"""Compiling runs with the cyclic garbage collector off (mlbuild/graph/compiled.py): it must be on
again afterwards however the compile ends, and stay off for a caller that had turned it off."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.errors import RecipeError
from mlbuild.graph.workspace import Workspace

GOOD = "schema_version: 1\nname: demo\nsteps:\n  s: {cmd: echo > o.txt, outs: [o.txt]}\n"


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def compile_in(root: Path, text: bytes) -> None:
    (root / "ml.yaml").write_bytes(text)
    Workspace.find(root).graph([])


@pytest.mark.usefixtures("collector")
@pytest.mark.parametrize(
    "text",
    [GOOD.encode(), GOOD.replace("outs", "outz").encode(), b"name: caf\xe9\n"],
    ids=["compiled", "a bad recipe", "not UTF-8"],
)
def test_the_collector_is_on_again_after_a_compile(tmp_path: Path, text: bytes) -> None:
    gc.enable()
    with contextlib.suppress(RecipeError):  # the bad ones raise; either way, it is on again
        compile_in(tmp_path, text)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_a_caller_that_turned_the_collector_off_finds_it_off(tmp_path: Path) -> None:
    gc.disable()
    compile_in(tmp_path, GOOD.encode())
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_the_collector_is_off_while_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.graph import build

    seen = []
    real = build.compile_graph

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "compile_graph", spy)
    gc.enable()
    compile_in(tmp_path, GOOD.encode())
    assert seen == [False]
    assert gc.isenabled()
