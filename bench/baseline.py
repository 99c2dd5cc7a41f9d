"""What the `--baseline REV` benchmarks share: the option, a revision exported beside this
checkout, one timed `mlbuild` invocation with the child's CPU time (the figure that holds on a
loaded machine), and the table of medians."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def add_baseline_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline", required=True, help="git revision to compare against ('none': no baseline)"
    )


def checkouts(revision: str, tmp: Path) -> dict[str, Path]:
    """Label → source tree: ``revision`` exported into ``tmp`` first (unless it is 'none'), then
    this checkout."""
    here = {"this checkout": REPO}
    if revision == "none":
        return here
    return {f"baseline {revision}": export(revision, tmp / "baseline"), **here}


def print_header(repeat: int, case: str) -> None:
    """The machine's load and the head of the table :func:`print_medians` fills."""
    print(f"load average before: {os.getloadavg()[0]:.2f}, {repeat} runs each\n")
    print(f"| steps | {case} | checkout | CPU median (s) | wall median (s) |")
    print("| --- | --- | --- | --- | --- |")


def print_medians(steps: int, samples: Mapping[tuple[str, str], list[tuple[float, float]]]) -> None:
    """One table row per (case, checkout) of ``samples`` (wall, CPU): the CPU and wall medians."""
    for (case, label), values in samples.items():
        cpu = statistics.median(v[1] for v in values)
        wall = statistics.median(v[0] for v in values)
        print(f"| {steps} | {case} | {label} | {cpu:.3f} | {wall:.3f} |")


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
