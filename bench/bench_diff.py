"""How long ``mlbuild diff`` takes on the iris example: the reviewer's and the MR job's command.

A copy of ``examples/iris`` becomes a git repository (``main``); a branch changes a Hydra config
file (``conf/model/logreg.yaml``: ``C``) and the lock file. Measured, each as a fresh process:

- ``mlbuild diff main`` against the working tree, the first time (both sides compiled: Hydra
  composes each, the revision is copied out of git) and then repeated (compiled graphs and the
  copy are reused);
- the same after ``mlbuild run`` recorded runs (the run store is read for the metrics: the first
  time through SQLAlchemy, then from the memo of the store's state);
- ``mlbuild diff main HEAD --format markdown``, two revisions, as the MR job runs it.

Run from the repository's root::

    python bench/bench_diff.py --repeat 15
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "iris"
ENV = {
    **os.environ,
    "PYTHONPATH": str(REPO),
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def sh(cwd: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return done.stdout


CPU: list[float] = []  # user + sys of each timed command, which waiting for a core does not add


def timed(cwd: Path, *args: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    sh(cwd, sys.executable, "-m", "mlbuild.cli.main", *args)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def repo(where: Path) -> Path:
    def skip(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == EXAMPLE
        return {
            n
            for n in names
            if n == "__pycache__" or (top and n in {".mlbuild", "data", "model", "metrics.json"})
        }

    root = Path(shutil.copytree(EXAMPLE, where / "iris", ignore=skip))
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", "iris")
    sh(root, "git", "checkout", "-q", "-b", "feature")
    logreg = root / "conf" / "model" / "logreg.yaml"
    logreg.write_text(logreg.read_text().replace("C: 1.0", "C: 0.5"))
    lock = root / "requirements.lock"
    lock.write_text(lock.read_text().replace("numpy==2.4.6", "numpy==2.4.7"))
    sh(root, "git", "commit", "-q", "-am", "a stronger regularisation")
    return root


def series(root: Path, repeat: int, *args: str) -> tuple[float, list[float], list[float]]:
    first = timed(root, *args)
    CPU.clear()
    return first, [timed(root, *args) for _ in range(repeat)], list(CPU)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = repo(Path(tmp))
        CPU.clear()
        floor = [timed(root, "--version") for _ in range(args.repeat)]
        rows = [("`mlbuild --version` (start-up floor)", None, floor, list(CPU))]
        rows.append(
            ("`mlbuild diff main` (no run store)", *series(root, args.repeat, "diff", "main"))
        )
        rows.append(
            (
                "`mlbuild diff main HEAD --format markdown` (the MR job's)",
                *series(root, args.repeat, "diff", "main", "HEAD", "--format", "markdown"),
            )
        )
        sh(root, sys.executable, "-m", "mlbuild.cli.main", "run", "-q")
        rows.append(
            ("`mlbuild diff main` (runs recorded)", *series(root, args.repeat, "diff", "main"))
        )
    load = os.getloadavg()
    shown = ", ".join(f"{x:.2f}" for x in load)
    print(f"load average after: {shown}; {args.repeat} repetitions")
    print("| command | first (s) | wall median (s) | wall min (s) | CPU median (s) |")
    print("| --- | --- | --- | --- | --- |")
    for name, first, samples, cpu in rows:
        shown = "—" if first is None else f"{first:.3f}"
        print(
            f"| {name} | {shown} | {statistics.median(samples):.3f} | {min(samples):.3f} "
            f"| {statistics.median(cpu):.3f} |"
        )


if __name__ == "__main__":
    main()
