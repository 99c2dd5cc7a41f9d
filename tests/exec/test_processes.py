"""Steps die with the run — by Ctrl-C, SIGTERM, SIGHUP, and even SIGKILL — and a step is done when
its command exits, whatever it left running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses
from tests.exec.test_faults import alive, wait_for

# The step records its pid and its background grandchild's, then waits for `release`: the same
# command, unchanged, is killed in one run and completes in the next.
GATED = """\
schema_version: 1
name: demo
steps:
  slow:
    cmd: >-
      echo $$ > pid.txt; sleep 300 & echo $! > grandchild.txt;
      while [ ! -f release ]; do sleep 0.05; done; echo "written by $$" > out.txt
    outs: [out.txt]
"""


def gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after ``seconds`` (polling); [] when all went in time."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids to SIGKILL after the test, whatever happened: a failing test leaves no orphans."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def started(ws: Workspace, *args: str) -> tuple[subprocess.Popen[str], int, int]:
    """``mlbuild run`` started on GATED, once its step and the step's grandchild run."""
    ws.recipe(GATED)
    proc = ws.start("run", *args)
    wait_for(ws.root / "grandchild.txt")
    wait_for(ws.root / "pid.txt")
    time.sleep(0.1)  # let the shell finish writing the files
    return proc, int(ws.read("pid.txt")), int(ws.read("grandchild.txt"))


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def test_sigkill_of_mlbuild_takes_the_step_and_its_grandchild_with_it(
    ws: Workspace, leftovers: list[int]
) -> None:
    proc, step, grandchild = started(ws)
    leftovers += [step, grandchild]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert gone_within([step, grandchild], 2.0) == [], "the killed run's step outlived it"
    assert not list((ws.root / ".mlbuild/cache/actions").glob("*/*.json"))
    (ws.root / "release").touch()
    result = ws.run_json()  # the same command, unchanged: nothing of the killed run counts
    assert statuses(result) == {"slow": "ran"}
    rerun = int(ws.read("pid.txt"))
    assert rerun != step
    assert ws.read("out.txt") == f"written by {rerun}\n"
    time.sleep(0.5)
    assert ws.read("out.txt") == f"written by {rerun}\n", "an orphan overwrote the output"


def test_sighup_stops_the_steps_records_the_run_interrupted_and_exits_130(
    ws: Workspace, leftovers: list[int]
) -> None:
    proc, step, grandchild = started(ws)
    leftovers += [step, grandchild]
    proc.send_signal(signal.SIGHUP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "mlbuild: interrupted; stopped slow; finished steps stay cached" in stderr
    assert gone_within([step, grandchild], 2.0) == []
    (record,) = (ws.root / ".mlbuild/runs/journal").glob("*.json")
    assert json.loads(record.read_text())["status"] == "interrupted"
    assert not list((ws.root / ".mlbuild/running").glob("*.json"))


def test_a_step_left_running_when_mlbuild_and_its_guard_died_is_stopped_by_the_next_run(
    ws: Workspace, leftovers: list[int]
) -> None:
    proc, step, grandchild = started(ws)
    leftovers += [step, grandchild]
    (guard,) = [pid for pid, cmd in children(proc.pid) if "guard.py" in cmd]
    os.kill(guard, signal.SIGSTOP)  # so that it cannot act on mlbuild's death
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    os.kill(guard, signal.SIGKILL)
    assert gone_within([step], 2.0) == [], "the step's own process outlived mlbuild"
    time.sleep(0.5)
    assert alive(grandchild), "nothing was left running: the test proves nothing"
    (ws.root / "release").touch()
    done = ws.cli("run")
    assert done.returncode == 0, done.stderr
    assert (
        f"mlbuild: stopped step 'slow' (process group {step}), left running by an mlbuild run "
        "that was killed\n" in done.stderr
    )
    assert not alive(grandchild)
    assert ws.read("out.txt") == f"written by {int(ws.read('pid.txt'))}\n"
    assert not list((ws.root / ".mlbuild/running").glob("*.json"))


def test_a_record_naming_a_pid_now_used_by_another_process_is_ignored(ws: Workspace) -> None:
    ws.recipe(GATED.replace("while [ ! -f release ]; do sleep 0.05; done; ", ""))
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        running = ws.root / ".mlbuild/running"
        running.mkdir(parents=True)
        token = f"{Path('/proc/sys/kernel/random/boot_id').read_text().strip()}:"
        token += f"{os.stat('/proc/self/ns/pid').st_ino}:{stranger.pid}:1"  # started at tick 1
        (running / "slow.json").write_text(
            json.dumps({"step": "slow", "pid": stranger.pid, "process": token})
        )
        done = ws.cli("run")
        assert done.returncode == 0, done.stderr
        assert "stopped step" not in done.stderr
        assert stranger.poll() is None, "a process that merely reused the pid was killed"
        assert not (running / "slow.json").exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_background_child_holding_the_output_open_does_not_block_the_step(
    ws: Workspace, leftovers: list[int]
) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          bg:
            cmd: echo before; sleep 300 & echo $! > bg.txt; echo after > out.txt
            outs: [out.txt]
        """
    )
    done = ws.cli("run", timeout=60)
    leftovers.append(int(ws.read("bg.txt")))
    assert done.returncode == 0, done.stderr
    assert "[bg] before" in done.stdout
    assert "bg: done in " in done.stdout
    assert "cut" not in done.stdout
    assert gone_within([int(ws.read("bg.txt"))], 2.0) == [], "the leftover was not stopped"


def test_output_held_open_outside_the_step_group_is_cut_and_the_log_says_so(
    ws: Workspace,
) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          escape:
            cmd: >-
              setsid sh -c 'echo $$ > escaped.txt; exec sleep 300' &
              while [ ! -s escaped.txt ]; do sleep 0.01; done; echo main done
        """
    )
    try:
        done = ws.cli("run", timeout=60)
        assert done.returncode == 0, done.stderr
        note = (
            "output after the command exited was cut: a process it started outside its process "
            "group still holds the output open"
        )
        assert f"escape: {note}" in done.stdout
        assert ws.read(".mlbuild/logs/escape.log") == f"main done\nmlbuild: {note}\n"
    finally:
        if (ws.root / "escaped.txt").exists():
            os.kill(int(ws.read("escaped.txt")), signal.SIGKILL)
