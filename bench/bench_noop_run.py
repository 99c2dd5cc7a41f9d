"""What recording runs costs a no-op `mlbuild run` (every step cached): this checkout against a
baseline revision, alternated run by run so both see the same machine load.

    python bench/bench_noop_run.py --baseline d575cb1 --repeat 21

The workspace has four cached steps. Prints wall-clock and CPU (user + system) medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = """\
schema_version: 1
name: noop
params: {n: 1}
steps:
  a: {cmd: "echo a > a.txt", outs: [a.txt]}
  b: {cmd: "cat a.txt > b.txt", deps: [a.txt], outs: [b.txt]}
  c: {cmd: "cat b.txt > c.txt", deps: [b.txt], outs: [c.txt], params: [n]}
  d: {cmd: "cat c.txt > d.txt", deps: [c.txt], outs: [d.txt]}
"""


def once(checkout: Path, workspace: Path) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "mlbuild", "run", "-q"],
        cwd=workspace,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.baseline], cwd=REPO, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        results: dict[str, tuple[list[float], list[float]]] = {}
        for label, checkout in (("baseline " + args.baseline, base), ("this checkout", REPO)):
            workspace = Path(tmp) / label.replace(" ", "-")
            workspace.mkdir()
            (workspace / "ml.yaml").write_text(RECIPE)
            once(checkout, workspace)  # runs the steps
            once(checkout, workspace)  # warms the compiled graph and the store
            results[label] = ([], [])
        print(f"load average before: {os.getloadavg()[0]:.2f}, runs: {args.repeat} each\n")
        for _ in range(args.repeat):
            for label, checkout in (("baseline " + args.baseline, base), ("this checkout", REPO)):
                wall, cpu = once(checkout, Path(tmp) / label.replace(" ", "-"))
                results[label][0].append(wall)
                results[label][1].append(cpu)
        print("| no-op `mlbuild run -q` | wall median (s) | wall min (s) | CPU median (s) |")
        print("| --- | --- | --- | --- |")
        for label, (walls, cpus) in results.items():
            print(
                f"| {label} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                f"{statistics.median(cpus):.3f} |"
            )
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
