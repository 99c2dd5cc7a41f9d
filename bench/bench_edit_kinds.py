"""What `mlbuild plan` costs right after each kind of recipe edit (issue 15), at thousands of
steps: this checkout against a baseline revision, alternated run by run.

    python bench/bench_edit_kinds.py --baseline main --steps 2000 --repeat 3

The recipe is ``bench_graph_scale.py``'s (chains of 10 tiny steps, params selected by glob),
every step run once first. Each repetition makes one edit of each kind, then times `mlbuild plan`
(CPU seconds of the child, user + system, and wall):

- comment: the first line's comment changes (the data YAML loads do not);
- layout: the params mapping written in block style instead of flow style, and blank lines
  (same data);
- unused param: a param no step selects changes value (the data do; no step's fingerprint);
- one command: the first chain's first step's command changes (10 steps to run again).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from baseline import add_baseline_option, checkouts, print_header, print_medians, timed
from bench_graph_scale import recipe

FLOW = "params: {train: {lr: 0.1, depth: 3}, prep: {n: 1}}"


def _comment(text: str, rep: int) -> str:
    return text.replace("# edit 0", f"# edit {rep}", 1)


def _layout(text: str, rep: int) -> str:
    return text.replace(FLOW, "params:\n  train: {lr: 0.1, depth: 3}\n  prep: {n: 1}" + "\n" * rep)


def _unused(text: str, rep: int) -> str:
    return text.replace(FLOW, FLOW[:-1] + f", unused: {{k: {rep}}}}}")


def _command(text: str, rep: int) -> str:
    return text.replace("'echo 0 0 > c0/0.txt'", f"'echo 0 0 {rep} > c0/0.txt'", 1)


EDITS: dict[str, Callable[[str, int], str]] = {
    "comment": _comment,
    "layout": _layout,
    "unused param": _unused,
    "one command": _command,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_baseline_option(parser)
    parser.add_argument("--steps", type=int, nargs="+", default=[2000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = checkouts(args.baseline, Path(tmp))
        print_header(args.repeat, "edit, then plan")
        for steps in args.steps:
            original = recipe(steps)
            spaces = {}
            for index, (label, checkout) in enumerate(trees.items()):
                workspace = Path(tmp) / f"{steps}-{index}"
                workspace.mkdir()
                (workspace / "ml.yaml").write_text(original)
                timed(checkout, workspace, ["run", "-q", "-j", "2"])  # runs every step
                spaces[label] = workspace
            samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for rep in range(1, args.repeat + 1):
                for kind, edit in EDITS.items():
                    for label, checkout in trees.items():
                        workspace = spaces[label]
                        (workspace / "ml.yaml").write_text(original)
                        timed(checkout, workspace, ["plan"])  # the original, compiled
                        (workspace / "ml.yaml").write_text(edit(original, rep))
                        samples.setdefault((kind, label), []).append(
                            timed(checkout, workspace, ["plan"])
                        )
            print_medians(steps, samples)
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
