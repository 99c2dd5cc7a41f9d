"""What the `--baseline REV` benchmarks share: a revision exported beside this checkout, and one
timed `mlbuild` invocation with the child's CPU time (the figure that holds on a loaded machine)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def export(revision: str, dest: Path) -> Path:
    """The tree of ``revision`` of this repository, extracted into ``dest`` (made here)."""
    dest.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def timed(
    checkout: Path, workspace: Path, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> tuple[float, float]:
    """``mlbuild ARGV`` of ``checkout`` run in ``workspace``: (wall, CPU) seconds; exits with the
    command's stderr if it fails."""
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": str(checkout)}
    # an installed mlbuild runs from cached bytecode: without it every call compiles ~100
    # modules (0.7 s here) and the figures measure the compiler
    full_env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlbuild", *argv],
        cwd=workspace,
        env=full_env,
        check=False,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mlbuild {' '.join(argv)} failed in {workspace}:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
