"""``plan`` never judges a dep that a step running first will write: it is pending, whatever the
file holds now (the outputs of the steps that run first are indexed once per step)."""

from __future__ import annotations

from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: pending
steps:
  make:
    cmd: python make.py
    deps: [make.py]
    outs: [data/x.txt, stuff/, one.txt]
  use:
    cmd: cat stuff/z.txt one.txt > used.txt
    deps: [stuff/z.txt, one.txt]
    outs: [used.txt]
  whole:
    cmd: ls data > listed.txt
    deps: [data]
    outs: [listed.txt]
"""
MAKE = """\
import os
os.makedirs("data", exist_ok=True)
open("data/x.txt", "w").write("x")
os.makedirs("stuff", exist_ok=True)
open("stuff/z.txt", "w").write("z")
open("one.txt", "w").write("1")
"""


def test_deps_written_by_a_step_that_runs_first_are_pending_even_when_edited_by_hand(
    ws: Workspace,
) -> None:
    ws.recipe(RECIPE).gen({"make.py": MAKE})
    assert ws.run_json()["steps"]
    (ws.root / "make.py").write_text(MAKE + "# changed\n")
    (ws.root / "stuff" / "z.txt").write_text("edited by hand")  # inside a folder output
    (ws.root / "data" / "x.txt").write_text("edited by hand")  # an output inside a folder dep
    (ws.root / "one.txt").write_text("edited by hand")  # an output itself
    done = ws.cli("plan")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "  use    pending  runs after 'make', whose outputs may change" in lines, done.stdout
    assert "  whole  pending  runs after 'make', whose outputs may change" in lines, done.stdout
