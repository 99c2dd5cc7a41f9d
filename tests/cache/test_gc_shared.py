"""``mlbuild gc`` with a cache shared by clones (``MLBUILD_CACHE_DIR``): it keeps what any of them
still uses, takes the run lock, and never collects between a run's objects and its entry."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHILD_ENV, Workspace, statuses
from tests.exec.test_faults import wait_for

RECIPE = """\
schema_version: 1
name: shared
params: {n: 1}
steps:
  make:
    cmd: python make.py
    deps: [make.py]
    params: [n]
    outs: [out.txt]
"""
MAKE = """\
import mlbuild, pathlib, time
n = mlbuild.params()["n"]
if n == 99:  # the gated run: waits for the test to let it finish
    pathlib.Path("started").touch()
    while not pathlib.Path("release").exists():
        time.sleep(0.05)
pathlib.Path("out.txt").write_text(f"n={n}")
"""


class Clone:
    """A workspace using the shared cache for every command."""

    def __init__(self, ws: Workspace, cache: Path) -> None:
        self.ws = ws.recipe(RECIPE).gen({"make.py": MAKE})
        self.root = ws.root
        self.env = {"MLBUILD_CACHE_DIR": str(cache)}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.ws.cli(*args, env=self.env)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return self.ws.start(*args, env=self.env)

    def run(self, *args: str) -> dict[str, str]:
        return statuses(self.ws.run_json(*args, env=self.env))

    def gc(self, *args: str) -> dict[str, Any]:
        done = self.cli("gc", "--json", *args)
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    def restores(self, *overrides: str) -> bool:
        (self.root / "out.txt").unlink(missing_ok=True)
        return self.run(*overrides) == {"make": "restored"}


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    return tmp_path / "shared-cache"


@pytest.fixture
def clones(make_ws: Callable[[str], Workspace], shared: Path) -> tuple[Clone, Clone]:
    a, b = Clone(make_ws("a"), shared), Clone(make_ws("b"), shared)
    assert a.run("n=1") == {"make": "ran"}
    assert b.run("n=2") == {"make": "ran"}
    return a, b


def test_gc_in_one_clone_keeps_what_another_clone_uses(clones: tuple[Clone, Clone]) -> None:
    a, b = clones
    report = a.gc()
    assert sorted(report["workspaces"]) == sorted([str(a.root), str(b.root)])
    assert (report["actions_removed"], report["objects_removed"]) == (0, 0)
    assert b.restores("n=2") and a.restores("n=1")
    assert a.run("n=3") == {"make": "ran"}  # a moves on: nobody uses n=1 any more
    report = a.gc()
    assert (report["actions_removed"], report["objects_removed"]) == (1, 1)
    assert b.restores("n=2") and a.restores("n=3")


def test_gc_keeps_the_model_versions_another_clone_registered(
    clones: tuple[Clone, Clone],
) -> None:
    a, b = clones
    registered = json.loads(b.cli("runs", "list", "--json").stdout)[0]["id"][:8]
    assert b.cli("model", "register", registered, "--name", "m").returncode == 0
    assert b.run("n=4") == {"make": "ran"}  # b's outputs no longer come from n=2
    a.gc()
    got = b.cli("runs", "get", registered, "out.txt", "-o", "got.txt")
    assert got.returncode == 0, got.stderr
    assert b.ws.read("got.txt") == "n=2"


def test_a_clone_that_no_longer_exists_is_forgotten_and_its_results_collected(
    clones: tuple[Clone, Clone],
) -> None:
    a, b = clones
    shutil.rmtree(b.root)
    done = a.cli("gc")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "removed 1 cached results and 1 objects (3 B); kept 1 results, 1 objects\n"
        f"forgot workspace {b.root}: it no longer exists\n"
    )
    assert a.gc()["workspaces"] == [str(a.root)]


def test_gc_refuses_when_it_cannot_read_what_another_clone_keeps(
    clones: tuple[Clone, Clone], shared: Path
) -> None:
    a, b = clones
    record = b.root / ".mlbuild" / "steps" / "make.json"
    record.write_text("{damaged")
    done = a.cli("gc")
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"mlbuild: gc cannot read {record}, a step record of the workspace {b.root} that "
        f"shares the cache at {shared} ("
    )
    assert done.stderr.endswith(
        "); fix or delete that file (the step then re-runs there) and run gc again\n"
    )
    record.unlink()
    registration = next((shared / "workspaces").glob("*.json"))
    registration.write_text("[]")
    done = a.cli("gc")
    assert done.returncode == 1
    assert f"mlbuild: workspace registration {registration} is unreadable (" in done.stderr
    assert b.restores("n=2")  # nothing was removed


def test_gc_refuses_or_waits_while_a_run_holds_the_workspace(clones: tuple[Clone, Clone]) -> None:
    a, _ = clones
    running = a.start("run", "n=99")
    wait_for(a.root / "started")
    refused = a.cli("gc")
    assert refused.returncode == 75
    assert refused.stderr.startswith("mlbuild: another mlbuild run (pid ")
    assert refused.stderr.endswith(
        "is running in this workspace; wait for it to finish, or pass --wait to queue behind it\n"
    )
    waiting = a.start("gc", "--wait", "--json")
    assert waiting.stderr is not None
    assert "mlbuild: waiting for the other mlbuild run" in waiting.stderr.readline()
    (a.root / "release").touch()
    assert running.wait(timeout=120) == 0
    out, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0
    assert json.loads(out)["actions_kept"] == 2  # the run's result, stored before gc decided
    assert a.restores("n=99")


HOLD = """\
import pathlib, sys, time
from mlbuild.cache import lock
root = pathlib.Path(sys.argv[1])
if sys.argv[2] == "shared":
    held = lock.shared(root)
else:
    held = lock.exclusive(root, wait=False, on_wait=print)
with held:
    print("held", flush=True)
    time.sleep(120)
"""


def hold_lock(cache: Path, kind: str) -> subprocess.Popen[str]:
    """Another process holding the cache lock: a run storing results, or a gc collecting."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(cache), kind],
        env={**CHILD_ENV, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_gc_refuses_while_a_run_in_any_clone_is_storing_results(
    clones: tuple[Clone, Clone], shared: Path
) -> None:
    a, _ = clones
    holder = hold_lock(shared, "shared")
    try:
        done = a.cli("gc")
        assert (done.returncode, done.stderr) == (
            75,
            f"mlbuild: an mlbuild run is writing to the cache at {shared}; try again when it "
            "is done, or pass --wait\n",
        )
    finally:
        holder.kill()
        holder.wait()
    assert a.gc()["actions_kept"] == 2


def test_a_run_stores_nothing_while_gc_collects_and_loses_nothing_after(
    clones: tuple[Clone, Clone], shared: Path
) -> None:
    _, b = clones
    entries = sorted((shared / "actions").glob("*/*.json"))
    holder = hold_lock(shared, "exclusive")
    try:
        run = b.start("run", "n=5")
        assert run.stdout is not None
        lines = []
        while not any("waiting: mlbuild gc is collecting" in line for line in lines):
            lines.append(run.stdout.readline())
            assert lines[-1], "the run ended without waiting for gc"
        assert lines[-1] == f"make: waiting: mlbuild gc is collecting the cache at {shared}\n"
        time.sleep(0.5)
        assert b.ws.read("out.txt") == "n=5"  # the step ran ...
        assert sorted((shared / "actions").glob("*/*.json")) == entries  # ... nothing stored
    finally:
        holder.kill()
        holder.wait()
    assert run.wait(timeout=120) == 0
    assert b.restores("n=5")
