"""What a no-op `mlbuild run` (every step cached) costs, or a param change: this checkout against
a baseline revision, alternated run by run so both see the same machine load.

    python bench/bench_noop_run.py --baseline d575cb1 --repeat 21
    python bench/bench_noop_run.py --baseline d575cb1 --params hydra --change override

The workspace has four steps; `c` reads the param `n`, which is inline in ml.yaml, in a Hydra
tree or in `params.yaml` (`--params`). `--change edit` edits it before each run, `--change
override` passes `n=V` (which mlbuild writes into `params.yaml`): both with a value never used
before, so `c` re-runs (`d`, its output unchanged, is a hit). Prints wall-clock and CPU
(user + system) medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from baseline import REPO, export, timed

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


HYDRA = "params: {config_dir: conf, config_name: config}"


def set_param(workspace: Path, kind: str, value: int) -> None:
    if kind == "file":  # DVC's convention; a baseline before params files cannot run this
        (workspace / "params.yaml").write_text(f"# the one parameter\nn: {value}\n")
        (workspace / "ml.yaml").write_text(RECIPE.replace("{n: 1}", "params.yaml"))
    elif kind == "hydra":
        (workspace / "conf").mkdir(exist_ok=True)
        (workspace / "conf" / "config.yaml").write_text(f"n: {value}\n")
        (workspace / "ml.yaml").write_text(RECIPE.replace("params: {n: 1}", HYDRA))
    else:
        (workspace / "ml.yaml").write_text(RECIPE.replace("{n: 1}", f"{{n: {value}}}"))


def once(checkout: Path, workspace: Path, *args: str) -> tuple[float, float]:
    return timed(checkout, workspace, ["run", "-q", *args])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare against")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--params", choices=["inline", "hydra", "file"], default="inline")
    parser.add_argument("--change", choices=["noop", "edit", "override"], default="noop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = export(args.baseline, Path(tmp) / "baseline")
        results: dict[str, tuple[list[float], list[float]]] = {}
        for label, checkout in (("baseline " + args.baseline, base), ("this checkout", REPO)):
            workspace = Path(tmp) / label.replace(" ", "-")
            workspace.mkdir()
            set_param(workspace, args.params, 1)
            once(checkout, workspace)  # runs the steps
            once(checkout, workspace)  # warms the compiled graph and the store
            results[label] = ([], [])
        print(f"load average before: {os.getloadavg()[0]:.2f}, runs: {args.repeat} each\n")
        for rep in range(args.repeat):
            for label, checkout in (("baseline " + args.baseline, base), ("this checkout", REPO)):
                workspace = Path(tmp) / label.replace(" ", "-")
                extra: list[str] = []
                if args.change == "edit":
                    set_param(workspace, args.params, 100 + rep)
                elif args.change == "override":
                    extra = [f"n={1000 + rep}"]
                wall, cpu = once(checkout, workspace, *extra)
                results[label][0].append(wall)
                results[label][1].append(cpu)
        what = {"noop": "no-op", "edit": "param edited, then", "override": "`n=V`:"}[args.change]
        print(
            f"| {what} `mlbuild run -q` ({args.params} params) | wall median (s) | wall min (s) "
            "| CPU median (s) |"
        )
        print("| --- | --- | --- | --- |")
        for label, (walls, cpus) in results.items():
            print(
                f"| {label} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                f"{statistics.median(cpus):.3f} |"
            )
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
