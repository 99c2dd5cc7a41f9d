"""A stop signal that arrives once the exit code is decided never turns it into a kill or a
traceback.

The interpreter puts the default handlers back after its exit hooks: a SIGTERM then, while it
tears the modules down (long in a process that imported DVC, pydantic and Hydra), killed a run
that had finished (-15), and a second SIGTERM after a first one had stopped the run killed it too
instead of exit 130 (tests/serve's drain test once saw it in CI). One during the exit hooks, or
while "interrupted" was printed, escaped as a traceback. The process here is the console script's
(``sys.exit(main())``), with a module global whose finaliser says when the teardown began and
then takes a second, so the signal lands in that window every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import CHILD_ENV, Workspace

ENTRY = """\
import os, sys, time

class Teardown:
    def __del__(self, write=os.write, sleep=time.sleep):  # module globals may be gone by then
        write(2, b"TEARDOWN\\n")
        sleep(1.5)

held = Teardown()  # finalised with the module globals, after the default handlers are back

from mlbuild.cli.main import main

sys.exit(main())
"""

RECIPE = """\
schema_version: 1
name: p
steps:
  s: {cmd: "SLEEP", outs: [o.txt]}
"""


def _start(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENTRY, *args],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _signal_at_teardown(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    said = ""
    try:
        while "TEARDOWN" not in said:
            line = proc.stderr.readline()
            assert line, proc.communicate()
            said += line
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return said + rest


@pytest.mark.slow
def test_a_sigterm_as_a_finished_run_exits_leaves_its_exit_code(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("SLEEP", "echo hi > o.txt"))
    proc = _start(ws, "run")
    stderr = _signal_at_teardown(proc)
    assert proc.returncode == 0, stderr  # was -15
    assert "Traceback" not in stderr
    assert ws.read("o.txt") == "hi\n"


@pytest.mark.slow
def test_a_second_sigterm_as_a_stopped_run_exits_leaves_130(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("SLEEP", "sleep 30 && echo hi > o.txt"))
    proc = _start(ws, "run")
    assert proc.stdout is not None
    assert "s: running" in proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    stderr = _signal_at_teardown(proc)
    assert proc.returncode == 130, stderr  # was -15
    assert "mlbuild: interrupted; stopped s" in stderr
    assert "Traceback" not in stderr
