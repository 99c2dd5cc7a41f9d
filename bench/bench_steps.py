"""What running step processes costs: this checkout against a baseline revision, alternated run
by run so both see the same machine load.

    python bench/bench_steps.py --baseline e07fadc --repeat 7

Cases: 30 trivial steps forced with ``-j 1`` (the cost of starting, watching and stopping a
step's process), and one step printing 400,000 lines (13 MB) with a secret declared (reading,
masking and logging output). Prints wall-clock and CPU (user + system, mlbuild and its steps)
medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from baseline import REPO, export, timed

TRIVIAL = "schema_version: 1\nname: trivial\nsteps:\n" + "".join(
    f"  s{i}: {{cmd: 'echo {i} > o{i}.txt', outs: [o{i}.txt]}}\n" for i in range(30)
)
LOUD = """\
schema_version: 1
name: loud
steps:
  loud:
    cmd: [python, -c, "for i in range(400000): print('line number', i, 'of some output')"]
    secrets: [BENCH_TOKEN]
"""
CASES = {
    "30 trivial steps, `run --force -j 1 -q`": (TRIVIAL, ["--force", "-j", "1", "-q"]),
    "one step printing 13 MB, `run --force -q`": (LOUD, ["--force", "-q"]),
}


def once(checkout: Path, workspace: Path, args: list[str]) -> tuple[float, float]:
    return timed(checkout, workspace, ["run", *args], {"BENCH_TOKEN": "bench-secret-value"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = export(args.baseline, Path(tmp) / "baseline")
        checkouts = {f"baseline {args.baseline}": base, "this checkout": REPO}
        print(f"load average before: {os.getloadavg()[0]:.2f}, runs: {args.repeat} each\n")
        print("| case | checkout | wall median (s) | wall min (s) | CPU median (s) |")
        print("| --- | --- | --- | --- | --- |")
        for number, (case, (recipe, run_args)) in enumerate(CASES.items()):
            places = {label: Path(tmp) / f"case{number}-{i}" for i, label in enumerate(checkouts)}
            results: dict[str, tuple[list[float], list[float]]] = {}
            for label, checkout in checkouts.items():
                places[label].mkdir()
                (places[label] / "ml.yaml").write_text(recipe)
                once(checkout, places[label], ["-q"])  # warms the compiled graph and the store
                results[label] = ([], [])
            for _ in range(args.repeat):
                for label, checkout in checkouts.items():
                    wall, cpu = once(checkout, places[label], run_args)
                    results[label][0].append(wall)
                    results[label][1].append(cpu)
            for label, (walls, cpus) in results.items():
                print(
                    f"| {case} | {label} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                    f"{statistics.median(cpus):.3f} |"
                )
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
