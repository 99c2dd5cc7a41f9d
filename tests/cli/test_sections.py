"""``mlbuild run`` in a GitLab job: each step's lines in a collapsible section, never overlapping.

GitLab folds the lines between ``section_start`` and ``section_end`` markers. Steps run in
parallel, but sections must nest, so the lines of a step that runs alongside another wait until
that one's section closes. The test runs two steps that print while both are running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import CHILD_ENV, Workspace

RECIPE = """\
schema_version: 1
name: sections
steps:
  slow:
    cmd: for i in 1 2 3; do echo slow-$i; sleep 0.4; done; echo done > slow.txt
    outs: [slow.txt]
  fast:
    cmd: for i in 1 2 3; do echo fast-$i; sleep 0.3; done; echo done > fast.txt
    outs: [fast.txt]
  after:
    cmd: cat slow.txt fast.txt > after.txt
    deps: [slow.txt, fast.txt]
    outs: [after.txt]
"""
START = re.compile(
    r"^\x1b\[0Ksection_start:(\d+):(mlbuild_\d+_(\w+))(\[collapsed=true\])?\r\x1b\[0K"
)
END = re.compile(r"^\x1b\[0Ksection_end:(\d+):(mlbuild_\d+_\w+)\r\x1b\[0K$")


def run(ws: Workspace, *args: str, gitlab: bool = True) -> str:
    """``mlbuild run ARGS``'s stdout as bytes decoded: text mode would turn the markers' ``\r``
    into line ends."""
    done = subprocess.run(
        [sys.executable, "-m", "mlbuild.cli.main", "run", *args],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV, "GITLAB_CI": "true" if gitlab else ""},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def sections(stdout: str) -> list[tuple[str, bool, list[str]]]:
    """(step, collapsed, lines) of each section, checking that none overlaps another."""
    found: list[tuple[str, bool, list[str]]] = []
    current: tuple[str, str, bool, list[str]] | None = None
    for line in stdout.split("\n"):  # not splitlines(): a marker line holds a \r
        start, end = START.match(line), END.match(line)
        if start:
            assert current is None, f"section {start.group(2)} opened inside {current}"
            header = line[start.end() :]
            current = (start.group(2), start.group(3), bool(start.group(4)), [header])
        elif end:
            assert current is not None and end.group(2) == current[0], line
            found.append((current[1], current[2], current[3]))
            current = None
        elif current is not None:
            current[3].append(line)
    assert current is None
    return found


def test_each_step_in_its_own_section_even_when_steps_run_at_once(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    stdout = run(ws, "-j", "2")
    found = sections(stdout)
    assert sorted(step for step, _, _ in found) == ["after", "fast", "slow"]
    assert found[-1][0] == "after"
    for step, collapsed, lines in found:
        assert not collapsed
        assert lines[0].startswith(f"{step}: running (")
        assert lines[-1].startswith(f"{step}: done in ")
        others = [
            line for line in lines if line.startswith("[") and not line.startswith(f"[{step}]")
        ]
        assert others == [], f"{step}'s section holds another step's lines: {others}"
    for step in ("slow", "fast"):  # every line of the step, in order, in its own section
        lines = next(lines for name, _, lines in found if name == step)
        assert lines[1:4] == [f"[{step}] {step}-{i}" for i in (1, 2, 3)]
    assert stdout.split("\n")[-2].startswith("3 steps: 3 ran in ")

    assert sorted(sections(run(ws))) == [  # one collapsed line each
        (step, True, [f"{step}: cached"]) for step in ("after", "fast", "slow")
    ]


def test_no_sections_outside_gitlab(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    stdout = run(ws, gitlab=False)
    assert "section_start" not in stdout and "\x1b" not in stdout and "\r" not in stdout
