"""The contract every step kind and every executor keeps, whatever the step does and wherever it
runs: cached, restored, re-run on a changed input with the reason, stopped by Ctrl-C, failed with
a message, timed out, its outputs in the cache.

One suite, parametrised by (kind, executor). The step under test is ``T``; what it does is set by
the file ``mode.txt`` (``ok``, ``fail``, ``sleep``) that it reads: a command step's shell, or the
model of a ``model:check`` step (a tiny class, ``model.py``, whose ``predict`` reads the file).
Adding an executor is one more entry in :data:`CASES`; ``container`` runs when its module is
there and a Docker engine answers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.cache import hash_bytes
from tests.conftest import CHILD_ENV, Workspace, statuses

COMMAND_RECIPE = """\
schema_version: 1
name: contract
executors: {clean: {}, container: {image: mlbuild-base:bookworm}}
steps:
  T:
    cmd: >-
      mode=$(cat mode.txt);
      if [ "$mode" = fail ]; then echo "mode says fail" >&2; exit 3; fi;
      if [ "$mode" = sleep ]; then touch started; sleep 60; fi;
      mkdir -p out && cat in.txt > out/result.txt
    deps: [mode.txt, in.txt]
    outs: [out/result.txt]
    executor: EXECUTOR
    TIMEOUT
"""

MODEL_RECIPE = """\
schema_version: 1
name: contract
steps:
  train:
    cmd: "echo '{\\"w\\": 2}' > w.json"
    outs: [w.json]
model:
  name: tiny
  artifacts: {w: w.json}
  class: model.py:Model
  signature:
    inputs: [{name: x, datatype: FP64, shape: [-1]}]
    outputs: [{name: y, datatype: FP64, shape: [-1]}]
  check:
    sample: in.csv
    output: out/result.csv
    deps: [mode.txt]
    TIMEOUT
"""

MODEL_PY = """\
import json
import pathlib
import time


class Model:
    def load(self, artifacts):
        self.w = json.loads(pathlib.Path(artifacts["w"]).read_text())["w"]

    def predict(self, inputs):
        mode = pathlib.Path("mode.txt").read_text().strip()
        if mode == "fail":
            raise ValueError("mode says fail")
        if mode == "sleep":
            pathlib.Path("started").touch()
            time.sleep(60)
        return {"y": inputs["x"] * self.w}
"""


class Case:
    """One (kind, executor): its recipe, the step's name, its input and output, its messages."""

    def __init__(self, kind: str, executor: str) -> None:
        self.kind = kind
        self.executor = executor
        model = kind == "model-check"
        self.step = "model:check" if model else "T"
        self.input = "in.csv" if model else "in.txt"
        self.output = "out/result.csv" if model else "out/result.txt"
        self.failure = (
            "model check failed: the model raised ValueError: mode says fail"
            if model
            else "command exited with code 3"
        )

    def recipe(self, timeout: str | None = None) -> str:
        text = MODEL_RECIPE if self.kind == "model-check" else COMMAND_RECIPE
        text = text.replace("EXECUTOR", self.executor)
        return text.replace("TIMEOUT", f"timeout: {timeout}" if timeout else "")

    def input_text(self, value: int) -> str:
        return f"x\n{value}\n" if self.kind == "model-check" else f"{value}\n"

    def expected_output(self, value: int) -> str:
        return f"y\n{2.0 * value}\n" if self.kind == "model-check" else f"{value}\n"

    def __repr__(self) -> str:
        return f"{self.kind}-{self.executor}"


def _docker_reason() -> str | None:
    """Why the container executor cannot run here, or None."""
    if importlib.util.find_spec("mlbuild.exec.container") is None:
        return "the container executor (mlbuild/exec/container.py) is not in this checkout"
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # no SDK, no engine: say which
        return f"no Docker engine is reachable ({type(exc).__name__})"
    return None


CASES = [
    pytest.param(Case("command", "local"), id="command-local"),
    pytest.param(Case("command", "clean"), id="command-clean"),
    pytest.param(
        Case("command", "container"),
        id="command-container",
        marks=pytest.mark.skipif(_docker_reason() is not None, reason=str(_docker_reason())),
    ),
    pytest.param(Case("model-check", "local"), id="model-check-local"),
]


def setup(ws: Workspace, case: Case, *, mode: str = "ok", timeout: str | None = None) -> None:
    ws.recipe(case.recipe(timeout)).gen(
        {"mode.txt": f"{mode}\n", case.input: case.input_text(1), "model.py": MODEL_PY}
    )


def step_of(result: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in result["steps"] if s["name"] == name)
    return found


def object_path(ws: Workspace, content: bytes) -> Path:
    digest = hash_bytes(content)
    return ws.root / ".mlbuild/cache/objects" / digest[:2] / digest[2:]


@pytest.mark.parametrize("case", CASES)
def test_a_step_runs_once_then_is_cached_and_its_output_is_in_the_cache(
    ws: Workspace, case: Case
) -> None:
    setup(ws, case)
    first = ws.run_json()
    assert step_of(first, case.step)["status"] == "ran"
    assert step_of(first, case.step)["kind"] == case.kind
    assert ws.read(case.output) == case.expected_output(1)
    assert object_path(ws, case.expected_output(1).encode()).is_file()
    second = ws.run_json()
    assert set(statuses(second).values()) == {"cached"}


@pytest.mark.parametrize("case", CASES)
def test_a_removed_output_is_restored_from_the_cache(ws: Workspace, case: Case) -> None:
    setup(ws, case)
    ws.run_json()
    (ws.root / case.output).unlink()
    result = ws.run_json()
    assert step_of(result, case.step)["status"] == "restored"
    assert ws.read(case.output) == case.expected_output(1)


@pytest.mark.parametrize("case", CASES)
def test_a_changed_input_reruns_the_step_and_says_why(ws: Workspace, case: Case) -> None:
    setup(ws, case)
    ws.run_json()
    ws.gen({case.input: case.input_text(5)})
    old, new = hash_bytes(case.input_text(1).encode()), hash_bytes(case.input_text(5).encode())
    result = ws.run_json()
    assert step_of(result, case.step)["status"] == "ran"
    assert step_of(result, case.step)["reasons"] == [
        f"dep {case.input} changed ({old[:8]} → {new[:8]})"
    ]
    assert ws.read(case.output) == case.expected_output(5)


@pytest.mark.parametrize("case", CASES)
def test_a_failing_step_fails_with_a_message_and_its_log(ws: Workspace, case: Case) -> None:
    setup(ws, case, mode="fail")
    done = ws.cli("run")
    assert done.returncode == 1, done.stderr
    log = f".mlbuild/logs/{case.step}.log"
    assert f"{case.step}: FAILED: {case.failure} (log: {log})\n" in done.stdout
    assert done.stderr.endswith(f"mlbuild: step '{case.step}' failed: {case.failure}; log: {log}\n")
    assert "mode says fail" in ws.read(log)
    assert "Traceback" not in done.stderr
    assert not (ws.root / case.output).exists()


@pytest.mark.parametrize("case", CASES)
def test_a_step_past_its_timeout_is_stopped_and_fails(ws: Workspace, case: Case) -> None:
    setup(ws, case, mode="sleep", timeout="3")
    started = time.monotonic()
    done = ws.cli("run")
    assert done.returncode == 1, done.stderr
    assert f"{case.step}: FAILED: timed out after 3s and was stopped" in done.stdout
    assert time.monotonic() - started < 50, "the step was not stopped at its timeout"


@pytest.mark.parametrize("case", CASES)
def test_ctrl_c_stops_the_step_and_the_run_exits_130(ws: Workspace, case: Case) -> None:
    setup(ws, case, mode="sleep")
    proc = ws.start("run")
    deadline = time.monotonic() + 60
    while not (ws.root / "started").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 130, stderr
    assert f"mlbuild: interrupted; stopped {case.step}; finished steps stay cached" in stderr
    assert not list((ws.root / ".mlbuild/running").glob("*.json"))


def test_an_exception_inside_a_kind_fails_only_that_step(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: plugged
        steps:
          boom:
            cmd: never run
          fine:
            cmd: echo fine > fine.txt
            outs: [fine.txt]
        """
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.exec.plugins", "run", "-k", "--json"],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert statuses(result) == {"boom": "failed", "fine": "ran"}
    message = step_of(result, "boom")["message"]
    assert message.startswith(
        "internal error: RuntimeError: kaboom (a bug in mlbuild; the traceback is in "
    ), message
    assert step_of(result, "boom")["kind"] == "raising"
    assert ws.read("fine.txt") == "fine\n"


INDEPENDENT = """\
schema_version: 1
name: three
steps:
  a:
    cmd: exit 3
  b:
    cmd: sleep 1; exit 4
  c:
    cmd: sleep 2; echo c > c.txt
    outs: [c.txt]
  after_a:
    cmd: echo never > after_a.txt
    needs: [a]
    outs: [after_a.txt]
"""


def test_keep_going_runs_every_independent_step_and_reports_all_failures(ws: Workspace) -> None:
    ws.recipe(INDEPENDENT)
    done = ws.cli("run", "--keep-going", "-j", "1")
    assert done.returncode == 1, done.stderr
    assert "a: FAILED: command exited with code 3 (log: .mlbuild/logs/a.log)\n" in done.stdout
    assert "b: FAILED: command exited with code 4 (log: .mlbuild/logs/b.log)\n" in done.stdout
    assert "c: done in " in done.stdout
    assert "after_a: skipped: not run: 'a' failed\n" in done.stdout
    assert "4 steps: 2 failed, 1 ran, 1 skipped in " in done.stdout
    assert (
        "2 steps failed:\n"
        "  STEP  MESSAGE                     LOG\n"
        "  a     command exited with code 3  .mlbuild/logs/a.log\n"
        "  b     command exited with code 4  .mlbuild/logs/b.log\n"
    ) in done.stdout
    assert done.stderr == (
        "mlbuild: step 'a', 'b' failed: command exited with code 3; log: .mlbuild/logs/a.log\n"
    )
    assert ws.read("c.txt") == "c\n"
    result = json.loads(ws.cli("run", "-k", "--json").stdout)
    assert result["keep_going"] is True
    assert [(f["name"], f["message"]) for f in result["failed"]] == [
        ("a", "command exited with code 3"),
        ("b", "command exited with code 4"),
    ]


def test_without_keep_going_no_step_starts_after_a_failure(ws: Workspace) -> None:
    ws.recipe(INDEPENDENT)
    done = ws.cli("run", "-j", "1")
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(
        "a: running (never run in this workspace)\n"
        "a: FAILED: command exited with code 3 (log: .mlbuild/logs/a.log)\n"
        "b: skipped: not started after 'a' failed (--keep-going would run it)\n"
        "c: skipped: not started after 'a' failed (--keep-going would run it)\n"
        "after_a: skipped: not run: 'a' failed\n"
        "4 steps: 1 failed, 3 skipped in "
    ), done.stdout
    assert not (ws.root / "c.txt").exists()
    assert done.stderr == (
        "mlbuild: step 'a' failed: command exited with code 3; log: .mlbuild/logs/a.log\n"
    )


def test_without_keep_going_the_running_steps_finish_and_stay_cached(ws: Workspace) -> None:
    ws.recipe(INDEPENDENT)
    done = ws.cli("run", "-j", "2")  # a and b start together; c would start after a
    assert done.returncode == 1, done.stderr
    assert "b: FAILED: command exited with code 4" in done.stdout
    assert "c: skipped: not started after 'a' failed (--keep-going would run it)\n" in done.stdout
