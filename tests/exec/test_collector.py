"""A run decides its cached steps with the cyclic garbage collector off (mlbuild/exec/scheduler.py):
on again as soon as a step runs, on again however the run ends, and left off for a caller that
had turned it off."""

from __future__ import annotations

import contextlib
import gc
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.cli.main import main
from mlbuild.exec.events import StepOutcome
from mlbuild.exec.step import StepRunner

RECIPE = """\
schema_version: 1
name: collector
steps:
  a: {cmd: 'echo a > a.txt', outs: [a.txt]}
  b: {cmd: 'cat a.txt > b.txt', deps: [a.txt], outs: [b.txt]}
  c: {cmd: 'exit 3', deps: [b.txt], outs: [c.txt]}
"""


@pytest.fixture
def collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ml.yaml").write_text(RECIPE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["run", "-q", *args])


@pytest.mark.usefixtures("collector")
def test_cached_steps_are_decided_with_the_collector_off_and_steps_run_with_it_on(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    assert run("b") == 0  # a and b ran
    deciding: list[bool] = []
    running: list[bool] = []
    cached, ran = StepRunner.cached, StepRunner.run

    def spy_cached(self: StepRunner, name: str) -> StepOutcome | None:
        deciding.append(gc.isenabled())
        return cached(self, name)

    def spy_run(self: StepRunner, name: str) -> StepOutcome:
        running.append(gc.isenabled())
        return ran(self, name)

    monkeypatch.setattr(StepRunner, "cached", spy_cached)
    monkeypatch.setattr(StepRunner, "run", spy_run)
    assert run() == 1  # a and b cached, c fails
    assert deciding == [False, False, False]  # c too: it is looked up before it is handed on
    assert running == [True]
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_the_collector_is_on_again_after_a_no_op_run_and_after_an_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.enable()
    assert run("b") == 0
    assert gc.isenabled()
    assert run("b") == 0  # every step cached: nothing turned it on on the way
    assert gc.isenabled()

    def broken(self: StepRunner, name: str) -> StepOutcome | None:
        raise KeyboardInterrupt

    monkeypatch.setattr(StepRunner, "cached", broken)
    assert run("b") == 130
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_a_caller_that_turned_the_collector_off_finds_it_off(root: Path) -> None:
    gc.disable()
    assert run() == 1  # a, b run; c fails
    assert not gc.isenabled()
    assert run("b") == 0  # cached
    assert not gc.isenabled()
