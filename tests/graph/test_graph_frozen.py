"""A graph is read with the cyclic garbage collector off and then frozen out of its passes
(mlbuild/graph/workspace.py): the collector is on again afterwards however the read ends, stays
off for a caller that had turned it off, and what is frozen is still freed when unused."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.errors import RecipeError
from mlbuild.graph import workspace
from mlbuild.graph.workspace import Workspace

GOOD = "schema_version: 1\nname: demo\nsteps:\n  s: {cmd: echo > o.txt, outs: [o.txt]}\n"


@pytest.fixture(autouse=True)
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    was = gc.isenabled()
    monkeypatch.setattr(workspace, "_FROZEN", threading.Event())  # as a new process
    yield
    gc.unfreeze()  # what the reads froze goes back to the collector of this test process
    if was:
        gc.enable()
    else:
        gc.disable()


def tracked(obj: object) -> bool:
    """``obj`` is in one of the collector's generations (not frozen)."""
    return any(o is obj for o in gc.get_objects())


@pytest.mark.parametrize("cached", [False, True], ids=["compiled", "read from the cache"])
def test_a_graph_is_frozen_out_of_the_collectors_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    gc.enable()
    (tmp_path / "ml.yaml").write_text(GOOD)
    if cached:
        Workspace.find(tmp_path).graph([])  # compiled, as by another process:
        monkeypatch.setattr(workspace, "_FROZEN", threading.Event())
    graph = Workspace.find(tmp_path).graph([])
    assert gc.isenabled()
    assert not tracked(graph.steps["s"])
    made_after = {"a": [1]}
    assert tracked(made_after)


def test_a_process_freezes_only_its_first_graph(tmp_path: Path) -> None:
    # a search worker reads a graph per trial: what it never collects stays bounded
    (tmp_path / "ml.yaml").write_text(GOOD)
    first = Workspace.find(tmp_path).graph([])
    second = Workspace.find(tmp_path).graph([])
    assert not tracked(first.steps["s"])
    assert tracked(second.steps["s"])


def test_what_is_frozen_is_still_freed_when_unused(tmp_path: Path) -> None:
    (tmp_path / "ml.yaml").write_text(GOOD)
    graph = Workspace.find(tmp_path).graph([])
    step = weakref.ref(graph.steps["s"])
    assert step() is not None
    del graph
    assert step() is None  # reference counting, with no pass of the collector


@pytest.mark.parametrize(
    "text",
    [GOOD.replace("outs", "outz").encode(), b"name: caf\xe9\n"],
    ids=["a bad recipe", "not UTF-8"],
)
def test_the_collector_is_on_again_after_a_read_that_fails(tmp_path: Path, text: bytes) -> None:
    gc.enable()
    (tmp_path / "ml.yaml").write_bytes(text)
    with pytest.raises(RecipeError):
        Workspace.find(tmp_path).graph([])
    assert gc.isenabled()
    (tmp_path / "ml.yaml").write_text(GOOD)  # fixed: the process's first graph is this one
    assert not tracked(Workspace.find(tmp_path).graph([]).steps["s"])


def test_a_caller_that_turned_the_collector_off_finds_it_off(tmp_path: Path) -> None:
    gc.disable()
    (tmp_path / "ml.yaml").write_text(GOOD)
    Workspace.find(tmp_path).graph([])  # compiled
    Workspace.find(tmp_path).graph([])  # read back
    assert not gc.isenabled()
