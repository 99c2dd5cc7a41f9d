"""Containers of a killed run: found by their labels and removed by the next run's sweep, with
their scratch directories and secret files; a live run's containers are left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild.exec.container import ContainerExecutor, workspace_key
from mlbuild.exec.secret_files import base
from tests.conftest import CHILD_ENV
from tests.docker_engine import BASE_IMAGE, Engine
from tests.exec.container_box import Box, new_box

pytestmark = pytest.mark.slow

# A run that starts one step and is then killed (by the test) before it waits for it.
KILLED_RUN = f"""\
import sys
from pathlib import Path
from mlbuild.exec.executor import ProcessRequest
from mlbuild.exec.container import ContainerExecutor, workspace_key
from mlbuild.masking import Secrets

root = Path(sys.argv[1])
secrets = Secrets.from_env(["TOKEN"], {{"TOKEN": "leftover-secret-value"}})
request = ProcessRequest(
    "train", ["/bin/sh", "-c", sys.argv[2]], root, {{}}, {{"TOKEN": "leftover-secret-value"}},
    [], ["out"], root / "train.log", secrets, None, print, {{"image": "{BASE_IMAGE}"}},
)
step = ContainerExecutor().start(request)
print(step.ident, flush=True)
sys.stdin.read()  # until killed
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    yield from new_box(tmp_path)


def killed_run(root: Path, command: str) -> str:
    """Start a step in a run that is then killed with SIGKILL; the container's ident."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(root), command],
        env={**os.environ, **CHILD_ENV},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ident = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ident.startswith("container "), ident
    return ident.removeprefix("container ")


def secret_folders(root: Path) -> set[str]:
    """The secret folders of workspace ``root`` (other tests make their own meanwhile)."""
    prefix = f"mlbuild-secrets-{workspace_key(root)}-"
    return {name for name in os.listdir(base()) if name.startswith(prefix)}


def test_the_next_run_stops_a_killed_runs_container_and_cleans_up(
    docker_engine: Engine, box: Box
) -> None:
    short = killed_run(box.root, "sleep 300")
    [container] = docker_engine.containers_of(box.root)
    assert container.status == "running"
    assert container.labels["dev.mlbuild.step"] == "train"
    assert len(list((box.root / ".mlbuild/containers").iterdir())) == 1
    assert len(secret_folders(box.root)) == 1

    stopped = ContainerExecutor().leftovers(box.root)

    assert stopped == [
        f"stopped step 'train' (container {short}), left running by an mlbuild run that was killed"
    ]
    assert docker_engine.containers_of(box.root) == []
    assert list((box.root / ".mlbuild/containers").iterdir()) == []
    assert secret_folders(box.root) == set()
    assert ContainerExecutor().leftovers(box.root) == []  # nothing twice


def test_an_exited_container_of_a_killed_run_is_removed_too(
    docker_engine: Engine, box: Box
) -> None:
    short = killed_run(box.root, "true")
    [container] = docker_engine.containers_of(box.root)
    container.wait()
    assert ContainerExecutor().leftovers(box.root) == [
        f"removed the container of step 'train' (container {short}), left by an mlbuild run "
        "that was killed"
    ]
    assert docker_engine.containers_of(box.root) == []


def test_a_live_runs_container_is_left_alone(docker_engine: Engine, box: Box) -> None:
    step = ContainerExecutor().start(box.request("sleep 300", outputs=["out"]))
    try:
        assert ContainerExecutor().leftovers(box.root) == []
        [container] = docker_engine.containers_of(box.root)
        assert container.status == "running"
        assert len(list((box.root / ".mlbuild/containers").iterdir())) == 1
    finally:
        step.abandon()


def test_another_workspaces_containers_are_not_touched(
    docker_engine: Engine, box: Box, tmp_path: Path
) -> None:
    killed_run(box.root, "sleep 300")
    other = tmp_path / "other"
    other.mkdir()
    assert ContainerExecutor().leftovers(other) == []
    assert len(docker_engine.containers_of(box.root)) == 1
    ContainerExecutor().leftovers(box.root)


def test_without_an_engine_the_sweep_still_clears_scratch_directories(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = box.root / ".mlbuild/containers/train.abc123"
    (stale / "half").mkdir(parents=True)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    assert ContainerExecutor().leftovers(box.root) == []
    assert not stale.exists()
