"""Container steps through the CLI: ``executor: container`` in ``ml.yaml`` and ``mlbuild run
--executor container``, on a real Docker engine, with ``mlbuild`` run as a subprocess.

What every executor does (cached, restored, re-run on a changed dep, a failure, a timeout, Ctrl-C)
is tests/exec/test_contract.py, parametrised with ``container``; this file is what is the
container's own: what the step sees and leaves, who owns its outputs, the image in the
fingerprint, secrets, a killed run's container, an engine or image that is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.docker_engine import BASE_IMAGE, Engine, remove_containers

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_container_left(ws: Workspace) -> Iterator[None]:
    """Whatever container a test that failed half-way left is removed after it."""
    yield
    remove_containers(ws.root)


PREPARE = """\
import os
rows = open("data/raw.csv").read().splitlines()
with open("model.txt.tmp", "w") as out:        # written aside, then renamed
    out.write(str(len(rows)))
os.replace("model.txt.tmp", "model.txt")
os.makedirs("data/prepared", exist_ok=True)
for i, row in enumerate(rows):
    open(f"data/prepared/{i}.csv", "w").write(row.upper())
open("scratch-note.txt", "w").write("not an output")
print("in a container:", os.path.exists("/.dockerenv"), "as", os.getuid())
"""


def recipe(image: str = BASE_IMAGE, step: str = "", executor: str = "container") -> str:
    return f"""\
schema_version: 1
name: boxed
executors:
  container: {{image: "{image}"}}
steps:
  prepare:
    cmd: python3 src/prepare.py
    deps: [src/prepare.py, data/raw.csv]
    outs: [model.txt, data/prepared/]
    executor: {executor}
{step}"""


def setup(ws: Workspace, **kwargs: str) -> Workspace:
    return ws.recipe(recipe(**kwargs)).gen(
        {"src": {"prepare.py": PREPARE}, "data": {"raw.csv": "a\nb\nc\n"}}
    )


def step_of(result: dict[str, object], name: str) -> dict[str, object]:
    steps = result["steps"]
    assert isinstance(steps, list)
    found: dict[str, object] = next(s for s in steps if s["name"] == name)
    return found


def test_a_step_runs_in_its_image_and_only_its_outputs_come_back_as_yours(
    docker_engine: Engine, ws: Workspace
) -> None:
    setup(ws)
    first = ws.run_json()
    assert statuses(first) == {"prepare": "ran"}
    assert ws.read(".mlbuild/logs/prepare.log") == f"in a container: True as {os.getuid()}\n"
    assert ws.read("model.txt") == "3"
    assert sorted(os.listdir(ws.root / "data/prepared")) == ["0.csv", "1.csv", "2.csv"]
    for path in ("model.txt", "data/prepared", "data/prepared/0.csv"):
        info = (ws.root / path).stat()
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid()), path
    assert not (ws.root / "scratch-note.txt").exists()
    assert not (ws.root / "model.txt.tmp").exists()
    assert docker_engine.containers_of(ws.root) == []
    assert list((ws.root / ".mlbuild/containers").iterdir()) == []

    assert statuses(ws.run_json()) == {"prepare": "cached"}
    (ws.root / "model.txt").unlink()
    assert statuses(ws.run_json()) == {"prepare": "restored"}
    assert ws.read("model.txt") == "3"


def test_an_undeclared_input_is_not_there_and_the_step_fails_naming_its_log(
    docker_engine: Engine, ws: Workspace
) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: boxed
        executors: {container: {image: mlbuild-base:bookworm}}
        steps:
          T:
            cmd: cat declared.txt undeclared.txt > out.txt
            deps: [declared.txt]
            outs: [out.txt]
            executor: container
        """
    ).gen({"declared.txt": "yes\n", "undeclared.txt": "no\n"})
    done = ws.cli("run")
    assert done.returncode == 1, done.stderr
    assert "T: FAILED: command exited with code 1 (log: .mlbuild/logs/T.log)\n" in done.stdout
    assert done.stderr == (
        "mlbuild: step 'T' failed: command exited with code 1; log: .mlbuild/logs/T.log\n"
    )
    assert ws.read(".mlbuild/logs/T.log") == "cat: undeclared.txt: No such file or directory\n"
    assert ws.read("out.txt") == "yes\n"  # what it wrote, left to look at, as a local step's
    assert docker_engine.containers_of(ws.root) == []


def test_run_executor_container_runs_every_command_step_in_the_container(
    docker_engine: Engine, ws: Workspace
) -> None:
    setup(ws, executor="local")
    done = ws.cli("run", "--executor", "container")
    assert done.returncode == 0, done.stderr
    assert ws.read(".mlbuild/logs/prepare.log").startswith("in a container: True")


def test_a_new_image_under_the_same_name_reruns_the_step_and_plan_says_why(
    docker_engine: Engine, ws: Workspace
) -> None:
    with docker_engine.image_name() as name:
        setup(ws, image=name)
        ws.run_json()
        changed = docker_engine.variant(name, "rerun")
        try:
            reason = f"executor image changed: {docker_engine.base_id[:19]}… → {changed[:19]}…"
            plan = ws.cli("plan")
            assert plan.returncode == 0, plan.stderr
            assert reason in plan.stdout
            again = ws.run_json()
            assert statuses(again) == {"prepare": "ran"}
            assert step_of(again, "prepare")["reasons"] == [reason]
            assert statuses(ws.run_json()) == {"prepare": "cached"}
        finally:
            docker_engine.client.images.remove(changed, force=True)


def test_a_secret_reaches_the_step_masked_in_its_log_and_never_recorded(
    docker_engine: Engine, ws: Workspace
) -> None:
    token = "s3cr3t-token-from-the-host-4d2c"
    ws.recipe(
        """\
        schema_version: 1
        name: boxed
        executors: {container: {image: mlbuild-base:bookworm}}
        steps:
          T:
            cmd: >-
              python3 -c "import hashlib, os;
              t = os.environ['API_TOKEN'];
              print(t);
              open('digest.txt', 'w').write(hashlib.sha256(t.encode()).hexdigest())"
            outs: [digest.txt]
            secrets: [API_TOKEN]
            executor: container
        """
    )
    done = ws.cli("run", env={"API_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert ws.read("digest.txt") == hashlib.sha256(token.encode()).hexdigest()
    assert ws.read(".mlbuild/logs/T.log") == "***\n"
    for path in (ws.root / ".mlbuild").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in done.stdout + done.stderr


SLEEPER = """\
schema_version: 1
name: boxed
executors: {container: {image: mlbuild-base:bookworm}}
steps:
  T:
    cmd: echo started; sleep 300; echo done > out.txt
    outs: [out.txt]
    executor: container
"""


def wait_for_container(engine: Engine, ws: Workspace, proc: subprocess.Popen[str]) -> str:
    """The id of the container of the run ``proc``, once its step has printed ``started``."""
    deadline = time.monotonic() + 60
    log = ws.root / ".mlbuild/logs/T.log"
    while not (log.exists() and "started" in log.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.1)
    [container] = engine.containers_of(ws.root)
    found: str = container.id
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_sigterm_and_sighup_stop_and_remove_the_container(
    docker_engine: Engine, ws: Workspace, sig: signal.Signals
) -> None:
    ws.recipe(SLEEPER)
    proc = ws.start("run")
    wait_for_container(docker_engine, ws, proc)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "mlbuild: interrupted; stopped T; finished steps stay cached" in stderr
    assert docker_engine.containers_of(ws.root) == []
    assert list((ws.root / ".mlbuild/containers").iterdir()) == []


def test_the_next_run_removes_the_container_of_a_killed_run(
    docker_engine: Engine, ws: Workspace
) -> None:
    ws.recipe(SLEEPER)
    proc = ws.start("run")
    container = wait_for_container(docker_engine, ws, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    [left] = docker_engine.containers_of(ws.root)
    assert left.status == "running"

    ws.recipe(SLEEPER.replace("sleep 300; ", ""))
    done = ws.cli("run")
    assert done.returncode == 0, done.stderr
    assert (
        f"mlbuild: stopped step 'T' (container {container[:12]}), left running by an mlbuild "
        "run that was killed\n"
    ) in done.stderr
    assert ws.read("out.txt") == "done\n"
    assert docker_engine.containers_of(ws.root) == []
    assert list((ws.root / ".mlbuild/containers").iterdir()) == []


def test_a_missing_image_is_named_before_anything_runs(
    docker_engine: Engine, ws: Workspace
) -> None:
    setup(ws, image="mlbuild-test-missing:nope")
    done = ws.cli("run")
    assert done.returncode == 2, done.stderr
    host = os.environ.get("DOCKER_HOST")
    address = f"{host} (DOCKER_HOST)" if host else "unix:///var/run/docker.sock"
    assert done.stderr == (
        f"mlbuild: image 'mlbuild-test-missing:nope' is not in the Docker engine at {address}; "
        "pull it (`docker pull mlbuild-test-missing:nope`) or build it (`docker build -t "
        "mlbuild-test-missing:nope .`)\n"
    )
    assert "Traceback" not in done.stdout + done.stderr
    assert not (ws.root / "model.txt").exists()
    plan = ws.cli("plan")
    assert (plan.returncode, plan.stderr) == (2, done.stderr)


def test_no_engine_is_exit_2_with_where_it_looked_and_how_to_start_one(
    ws: Workspace, tmp_path: Path
) -> None:
    setup(ws)
    host = f"unix://{tmp_path}/dead.sock"
    done = ws.cli("run", env={"DOCKER_HOST": host})
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"mlbuild: cannot reach the Docker engine at {host} (DOCKER_HOST): no socket there; "
        "start it (`sudo systemctl start docker`, or `sudo dockerd &`) or point DOCKER_HOST at "
        "a running engine\n"
    )


def test_a_run_without_container_steps_never_imports_the_docker_sdk(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: plain
        executors: {container: {image: mlbuild-base:bookworm}}
        steps:
          T:
            cmd: echo hi > out.txt
            outs: [out.txt]
        """
    )
    done = ws.cli_python(
        "import sys, json\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run'])\n"
        "print(json.dumps([code, 'docker' in sys.modules]))\n"
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [0, False], done.stderr
