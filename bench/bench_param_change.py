#!/usr/bin/env python3
"""One param changed: DVC, this checkout's mlbuild and a baseline revision's, side by side.

The 8-stage pipeline of ``bench_vs_dvc.py`` (small data: the case is about the tools' own cost,
not hashing) in fresh repositories per tool and per mlbuild source. Each repetition changes
``s6.n`` to a value never used before — by editing ``params.yaml`` (DVC), ``ml.yaml``'s inline
params (``ml``) or ``conf/config.yaml`` (``mlh``, a Hydra tree), and for mlbuild by a command-line
override ``s6.n=V`` — then runs ``dvc repro`` / ``mlbuild run --json``; the order rotates every
repetition. Exactly s6, s7, s8 must run. mlbuild's overhead = wall − the ran steps' durations
(its ``--json``); DVC's = wall − the three commands run bare. CPU is the child's user + sys.

Usage::

    python bench/bench_param_change.py --baseline main --reps 7
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import REPO, export
from vs_dvc.common import AFFECTED, CHANGED, STAGES, BenchError, Run, Tools, timed
from vs_dvc.repos import (
    fresh_copy,
    generate_data,
    make_template,
    set_params,
    stage_cmd,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--baseline", default="main", help="the revision to compare with")
    parser.add_argument(
        "--dvc", default=shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    )
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-size-mb", type=float, default=0.05)
    parser.add_argument(
        "--validate-only", action="store_true", help="only the `mlbuild validate` CPU table"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mlbuild-param-bench-"))
    try:
        return _run(args, work)
    except BenchError as exc:
        print(f"bench_param_change: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLBUILD_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env |= {"DVC_NO_ANALYTICS": "1", "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": str(work / "pyc")}
    sources = {"new": REPO, "old": export(args.baseline, work / "baseline")}
    tools = Tools(args.dvc, "mlbuild", sys.executable, env, dict(env))
    data = work / "data"
    generate_data(data, args.files, int(args.file_size_mb * (1 << 20)))
    templates = {
        kind: make_template(kind, work, data, tools, work / "site") for kind in ("dvc", "ml", "mlh")
    }
    bare = fresh_copy(templates["ml"], work / "bare")
    for name in STAGES:  # the outputs the affected commands read
        timed(["/bin/sh", "-c", stage_cmd(sys.executable, name, "1")], bare, env)

    def mlbuild(source: str) -> Callable[[Path, list[str]], Run]:
        ml_env = {**env, "PYTHONPATH": str(sources[source])}
        return lambda repo, extra: timed(
            [sys.executable, "-m", "mlbuild", "run", "--json", *extra], repo, ml_env, as_json=True
        )

    def dvc(repo: Path, extra: list[str]) -> Run:
        return timed([args.dvc, "repro"], repo, env)

    cases: dict[str, tuple[str, Callable[[Path, list[str]], Run], bool]] = {
        "dvc: params.yaml edited": ("dvc", dvc, False),
        **{
            f"mlbuild {s}: {what}": (kind, mlbuild(s), override)
            for kind, what, override in (
                ("ml", "ml.yaml inline param edited", False),
                ("ml", "`run s6.n=V` (inline params)", True),
                ("mlh", "conf/config.yaml edited (Hydra tree)", False),
                ("mlh", "`run s6.n=V` (Hydra tree)", True),
            )
            for s in ("old", "new")
        },
    }
    repos = {
        name: fresh_copy(templates[kind], work / f"r{i}")
        for i, (name, (kind, _, _)) in enumerate(cases.items())
    }
    for name, (_, run, _) in cases.items():
        run(repos[name], [])  # the first run: everything cached after it
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
    names = list(cases)
    for rep in range(-1, 0 if args.validate_only else args.reps):  # -1: a warm-up
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            kind, run, override = cases[name]
            repo = repos[name]
            if override:
                done = run(repo, [f"{CHANGED}.n={1000 + rep + 2}"])
            else:
                values = dict.fromkeys(STAGES, 1)
                values[CHANGED] = 100 + rep + 2
                set_params(kind, repo, sys.executable, values)
                done = run(repo, [])
            if sorted(done.ran()) != AFFECTED:
                raise BenchError(f"{name}: ran {done.ran()}, expected {AFFECTED}")
            if rep >= 0:
                steps = done.step_time() if done.report is not None else _bare(bare, rep)
                samples[name].append((done.wall, done.cpu, done.wall - steps))
    if not args.validate_only:
        _print(samples, args)
    _validate_cpu(args, repos, cases, env, sources)
    return 0


def _validate_cpu(
    args: argparse.Namespace,
    repos: dict[str, Path],
    cases: dict[str, tuple[str, Callable[[Path, list[str]], Run], bool]],
    env: dict[str, str],
    sources: dict[str, Path],
) -> None:
    """mlbuild's own CPU on a param change, without the steps: ``mlbuild validate`` (which
    compiles the graph as ``run`` does) right after the edit, and ``python -c pass``."""
    cpu: dict[str, list[float]] = {}
    for rep in range(args.reps):
        floor = timed([sys.executable, "-c", "pass"], repos[next(iter(repos))], env)
        cpu.setdefault("`python -c pass` (floor)", []).append(floor.cpu)
        for name, (kind, _, override) in cases.items():
            if kind == "dvc":
                continue
            source = name.split()[1].rstrip(":")
            ml_env = {**env, "PYTHONPATH": str(sources[source])}
            extra = [f"{CHANGED}.n={5000 + rep}"] if override else []
            if not override:
                values = dict.fromkeys(STAGES, 1)
                values[CHANGED] = 3000 + rep
                set_params(kind, repos[name], sys.executable, values)
            argv = [sys.executable, "-m", "mlbuild", "validate", *extra]
            cpu.setdefault(name, []).append(timed(argv, repos[name], ml_env).cpu)
    print()
    print("| `mlbuild validate` right after the change: CPU (user + sys) | median | new/old |")
    print("|---|---|---|")
    for name, values in cpu.items():
        ratio = ""
        if name.startswith("mlbuild new"):
            old = statistics.median(cpu[name.replace("mlbuild new", "mlbuild old")])
            ratio = f"{statistics.median(values) / old:.2f}"
        print(f"| {name} | {statistics.median(values):.3f} s | {ratio} |")


def _bare(repo: Path, rep: int) -> float:
    """The three affected commands run bare: what DVC's run costs beyond them is DVC's."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return sum(
        timed(["/bin/sh", "-c", stage_cmd(sys.executable, n, str(100 + rep + 2))], repo, env).wall
        for n in AFFECTED
    )


def _print(samples: dict[str, list[tuple[float, float, float]]], args: argparse.Namespace) -> None:
    def med(name: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[name])

    print(f"median of {args.reps} repetitions; old = {args.baseline}, new = this checkout")
    print("| case | wall | CPU | overhead (wall − steps) | new/old overhead |")
    print("|---|---|---|---|---|")
    for name in samples:
        ratio = ""
        if name.startswith("mlbuild new"):
            old = name.replace("mlbuild new", "mlbuild old")
            ratio = f"{med(name, 2) / med(old, 2):.2f}"
        print(
            f"| {name} | {med(name, 0):.3f} s | {med(name, 1):.3f} s | {med(name, 2):.3f} s "
            f"| {ratio} |"
        )


if __name__ == "__main__":
    sys.exit(main())
