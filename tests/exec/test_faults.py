"""Failures, timeouts, kills, Ctrl-C and concurrent runs: the cache stays whole through them."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purposes
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


BRANCHES = """\
schema_version: 1
name: demo
steps:
  good:
    cmd: echo fine > good.txt
    outs: [good.txt]
  bad:
    cmd: echo about to fail; exit 3
    outs: [bad.txt]
  after_bad:
    cmd: echo never > after.txt
    deps: [bad.txt]
    outs: [after.txt]
"""


def test_a_failing_step_stops_its_dependents_and_names_itself(ws: Workspace) -> None:
    ws.recipe(BRANCHES)
    done = ws.cli("run", "-j", "1")
    assert done.returncode == 1
    assert "mlbuild: step 'bad' failed: command exited with code 3; log: " in done.stderr
    assert "after_bad: skipped: not run: 'bad' failed" in done.stdout
    assert "Traceback" not in done.stderr
    assert "about to fail" in (ws.root / ".mlbuild/logs/bad.log").read_text()


def test_steps_that_finished_before_a_failure_stay_cached(ws: Workspace) -> None:
    ws.recipe(BRANCHES)
    ws.cli("run")
    done = ws.cli("run", "good")
    assert done.returncode == 0
    assert "good: cached" in done.stdout


def test_independent_steps_run_in_parallel(ws: Workspace) -> None:
    step = 'python -c "import time; s = time.time(); time.sleep(1.5); print(s, time.time())" > {}'
    ws.recipe(
        f"""\
        schema_version: 1
        name: demo
        steps:
          a: {{cmd: '{step.format("a.txt")}', outs: [a.txt]}}
          b: {{cmd: '{step.format("b.txt")}', outs: [b.txt]}}
        """
    )
    assert ws.cli("run", "-j", "2").returncode == 0
    a_start, a_end = map(float, ws.read("a.txt").split())
    b_start, b_end = map(float, ws.read("b.txt").split())
    assert a_start < b_end and b_start < a_end, "the two steps' run times do not overlap"


def test_a_step_that_does_not_write_its_declared_output_fails(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          lazy: {cmd: "true", outs: [model.pkl]}
        """
    )
    done = ws.cli("run")
    assert done.returncode == 1
    assert "step 'lazy' finished but did not create its declared output 'model.pkl'" in done.stderr
    assert ws.cli("run").returncode == 1, "a step that failed must not count as done"


def test_a_step_over_its_timeout_is_stopped_and_fails(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          slow: {cmd: "sleep 60", timeout: 1s}
        """
    )
    started = time.monotonic()
    done = ws.cli("run")
    assert done.returncode == 1
    assert "step 'slow' failed: timed out after 1s and was stopped" in done.stderr
    assert time.monotonic() - started < 30


KILLABLE = """\
schema_version: 1
name: demo
steps:
  slow:
    cmd: echo $$ > pid.txt; echo partial > out.txt; sleep 60; echo complete > out.txt
    outs: [out.txt]
"""


def test_ctrl_c_stops_the_children_and_exits_130(ws: Workspace) -> None:
    ws.recipe(KILLABLE)
    proc = ws.start("run")
    wait_for(ws.root / "pid.txt")
    wait_for(ws.root / "out.txt")
    child = int(ws.read("pid.txt"))
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted; stopped slow; finished steps stay cached" in stderr
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert not list((ws.root / ".mlbuild/cache/actions").glob("*/*.json"))


def test_a_second_run_in_the_same_workspace_refuses_while_the_first_holds_it(
    ws: Workspace,
) -> None:
    gated = "echo $$ > pid.txt; while [ ! -f release ]; do sleep 0.05; done; echo done > out.txt"
    ws.recipe(KILLABLE.replace(KILLABLE.splitlines()[4].split("cmd: ")[1], gated))
    first = ws.start("run")
    wait_for(ws.root / "pid.txt")
    second = ws.cli("run")
    assert second.returncode == 75  # busy: retry later, not a failed step
    assert "another mlbuild run (pid " in second.stderr
    assert "pass --wait to queue behind it" in second.stderr
    waiting = ws.start("run", "--wait", "--json")
    assert waiting.stderr is not None
    assert "waiting for the other mlbuild run" in waiting.stderr.readline()
    (ws.root / "release").touch()
    assert first.wait(timeout=120) == 0
    stdout, _ = waiting.communicate(timeout=120)
    assert waiting.returncode == 0
    assert statuses(json.loads(stdout)) == {"slow": "cached"}
    assert ws.read("out.txt") == "done\n"


@pytest.mark.parametrize("secret", ["s3cr3t-value-123"])
def test_secrets_reach_the_step_but_are_masked_and_never_stored(ws: Workspace, secret: str) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          upload:
            cmd: echo "token is $API_TOKEN"; echo "$API_TOKEN" | wc -c > length.txt
            secrets: [API_TOKEN]
            outs: [length.txt]
        """
    )
    done = ws.cli("run", env={"API_TOKEN": secret})
    assert done.returncode == 0, done.stderr
    assert "[upload] token is ***" in done.stdout
    assert secret not in done.stdout + done.stderr
    assert ws.read("length.txt").strip() == str(len(secret) + 1)
    for path in (ws.root / ".mlbuild").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"secret written to {path}"
    # changing the secret's value does not change the fingerprint
    again = ws.cli("run", "--json", env={"API_TOKEN": "another-value"})
    assert statuses(json.loads(again.stdout)) == {"upload": "cached"}


def test_a_missing_secret_fails_the_step_with_what_to_do(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          upload: {cmd: "true", secrets: [NOT_SET_ANYWHERE]}
        """
    )
    done = ws.cli("run")
    assert done.returncode == 1
    assert "secret NOT_SET_ANYWHERE is not set in the environment" in done.stderr


def test_a_command_that_does_not_exist_fails_cleanly(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          ghost: {cmd: [no-such-program-here, --flag]}
        """
    )
    done = ws.cli("run")
    assert done.returncode == 1
    assert "cannot start 'no-such-program-here': No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
