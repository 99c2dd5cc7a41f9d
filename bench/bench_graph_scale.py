"""What a graph of thousands of tiny steps costs (issue 15, item 1): this checkout against a
baseline revision, alternated run by run so both see the same machine load.

    python bench/bench_graph_scale.py --baseline main --steps 500 2000 --repeat 5
    python bench/bench_graph_scale.py --baseline none --steps 2000 10000 --no-params --repeat 3

``--no-params``: no step selects params (before 2026-11-30 a 10,000-step recipe of this shape
with params passed the loader's bound of 100,000 YAML nodes; that bound now counts only what
aliases add, mlbuild/recipe/limits.py).

The recipe has STEPS steps in chains of 10 (`sK_J` reads `K/J-1.txt`, writes `K/J.txt`) plus one
step that reads every chain's last file, and a glob of params in each step. Cases, CPU seconds
(user + system of the child, so the figures mean something on a loaded machine) and wall:

- recipe edit: a comment added to ml.yaml, then `mlbuild plan` (the graph is compiled again);
- plan: `mlbuild plan` with the compiled graph cached;
- no-op run: `mlbuild run -q` with every step cached.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from baseline import add_baseline_option, checkouts, print_header, print_medians, timed

CHAIN = 10


def recipe(steps: int, edit: int = 0, *, params: bool = True) -> str:
    lines = [f"# edit {edit}", "schema_version: 1", "name: scale"]
    lines.append("params: {train: {lr: 0.1, depth: 3}, prep: {n: 1}}")
    lines.append("steps:")
    chains = max(1, (steps - 1) // CHAIN)
    last = []
    for k in range(chains):
        for j in range(CHAIN):
            dep = f"deps: [c{k}/{j - 1}.txt], " if j else ""
            lines.append(
                f"  s{k}_{j}: {{cmd: 'echo {k} {j} > c{k}/{j}.txt', {dep}"
                f"outs: [c{k}/{j}.txt]" + (", params: ['prep.*']}" if params else "}")
            )
        last.append(f"c{k}/{CHAIN - 1}.txt")
    lines.append(f"  gather: {{cmd: 'cat c*/9.txt > all.txt', deps: [{', '.join(last)}], ")
    lines.append("           outs: [all.txt]" + (", params: [train]}" if params else "}"))
    return "\n".join(lines) + "\n"


def once(checkout: Path, workspace: Path, *args: str) -> tuple[float, float]:
    return timed(checkout, workspace, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_baseline_option(parser)
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-params", action="store_true", help="no step selects params")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = checkouts(args.baseline, Path(tmp))
        print_header(args.repeat, "case")
        for steps in args.steps:
            samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
            spaces = {}
            for index, (label, checkout) in enumerate(trees.items()):
                workspace = Path(tmp) / f"{steps}-{index}"  # a revision may hold a slash
                workspace.mkdir()
                (workspace / "ml.yaml").write_text(recipe(steps, params=not args.no_params))
                once(checkout, workspace, "run", "-q", "-j", "2")  # runs every step
                once(checkout, workspace, "run", "-q")  # warms the compiled graph
                spaces[label] = workspace
            for rep in range(args.repeat):
                for label, checkout in trees.items():
                    workspace = spaces[label]
                    (workspace / "ml.yaml").write_text(
                        recipe(steps, edit=rep + 1, params=not args.no_params)
                    )
                    cases = {
                        "recipe edit, then plan": ("plan",),
                        "plan": ("plan",),
                        "no-op run": ("run", "-q"),
                    }
                    for case, argv in cases.items():
                        samples.setdefault((case, label), []).append(
                            once(checkout, workspace, *argv)
                        )
            print_medians(steps, samples)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
