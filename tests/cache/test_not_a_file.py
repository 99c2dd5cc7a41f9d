"""A dep or an output that is a FIFO, a socket or a device is refused by name, never opened.

Hashing opened it: a FIFO waits for a writer for ever, so `mlbuild plan` hung on a FIFO dep, and a
step whose command left a FIFO at its output hung the run after the command finished (SIGTERM
then abandoned the step's thread after the grace period). Datasets refuse them already
(tests/data/test_not_data.py); plain deps and outputs now do too.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.conftest import Workspace

NOT_OPENED = "neither a file nor a folder; mlbuild never opens one (it could wait for ever)"


def test_a_fifo_dep_is_named_by_plan_and_run_and_never_opened(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: p
        steps:
          s: {cmd: cat in.txt > o.txt, deps: [in.txt], outs: [o.txt]}
        """
    )
    os.mkfifo(ws.root / "in.txt")
    plan = ws.cli("plan", timeout=60)  # hung for ever before
    assert plan.returncode == 2, plan.stderr
    assert (
        f"ml.yaml:4:39: steps.s.deps[0]: 'in.txt' is a FIFO (named pipe), {NOT_OPENED}"
        in plan.stderr
    )
    assert "Traceback" not in plan.stderr
    run = ws.cli("run", timeout=60)
    assert run.returncode == 1, run.stderr
    assert "'in.txt' is a FIFO (named pipe)" in run.stdout
    (ws.root / "in.txt").unlink()
    (ws.root / "in.txt").write_text("x\n")
    again = ws.cli("run", timeout=60)
    assert again.returncode == 0, again.stderr
    assert ws.read("o.txt") == "x\n"


def test_a_socket_dep_is_named(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: p
        steps:
          s: {cmd: echo > o.txt, deps: [in.sock], outs: [o.txt]}
        """
    )
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(ws.root / "in.sock"))
        plan = ws.cli("plan", timeout=60)
    finally:
        listener.close()
    assert plan.returncode == 2, plan.stderr
    assert f"'in.sock' is a socket, {NOT_OPENED}" in plan.stderr


@pytest.mark.slow
def test_a_step_that_leaves_a_fifo_at_its_output_fails_at_once_naming_it(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: p
        steps:
          s: {cmd: rm -f o.txt && mkfifo o.txt, outs: [o.txt]}
        """
    )
    run = ws.cli("run", timeout=60)  # hung until SIGTERM, then abandoned the step, before
    assert run.returncode == 1, run.stderr
    assert f"s: FAILED: 'o.txt' is a FIFO (named pipe), {NOT_OPENED}" in run.stdout
    assert "Traceback" not in run.stderr
