#!/usr/bin/env python3
"""Benchmark mlbuild against DVC on one generated 8-stage pipeline, side by side.

The script generates ``--files`` files of ``--file-size-mb`` MiB of random bytes under
``data/raw/`` and the same pipeline in these repositories:

* ``dvc``: a git + DVC repository with ``dvc.yaml`` and ``params.yaml``;
* ``ml``:  ``ml.yaml`` with an inline ``params:`` mapping;
* ``mlh``: ``ml.yaml`` with ``params: {config_dir: conf, config_name: config}`` (a Hydra tree);
* ``dd``:  DVC-tracked data (unless ``--no-dvc-data``): one git + DVC repo with both pipelines,
  where ``dvc add data/raw`` wrote ``data/raw.dvc``; ``ml.yaml`` declares ``data: {raw: {path:
  data/raw}}`` and its steps depend on ``data:raw`` (outputs in ``mlout/``, DVC's in ``out/``).

Every repetition starts from fresh copies of the repositories (``data/raw`` is hard-linked,
so each copy has its own state/cache but no tool gets a warm hash for free) and measures, with
the tools alternating (and the order flipped on every other repetition):

* start-up: ``python -c pass`` (the floor), ``--help`` of both tools, ``mlbuild validate``;
* first run (everything hashed): ``dvc repro`` vs ``mlbuild run``;
* no-op run and status (all cached): ``dvc repro``/``dvc status`` vs ``mlbuild run``/``status``;
* one param changed by editing the params file (``params.yaml``, ``ml.yaml``, ``conf/config.yaml``)
  and, for mlbuild, by a command-line override: which stages ran, wall time, and mlbuild's own
  overhead = wall time - the sum of the ran steps' durations reported by ``mlbuild run --json``;
* on ``dd``: first run, no-op ``dvc repro``/``dvc status`` vs ``mlbuild run``/``status``, and both
  pipelines after one data file is replaced and ``dvc add``-ed (exactly s1, s2, s4 must re-run).

The pipeline (each stage reads its own param ``sN.n``; changing ``s6.n`` re-runs s6, s7, s8)::

    data/raw ─┬─ s1 ─┐
              ├─ s2 ─┴─ s3 ─┐
              └─ s4 ────────┴─ s5 ── s6 ── s7 ─┬─ s8
                 └─────────────────────────────┘

Usage (see bench/README.md)::

    python bench/bench_vs_dvc.py --dvc /tmp/dvcvenv/bin/dvc --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# run as a script: bench/ is sys.path[0], so the cases import as the package vs_dvc
from vs_dvc import case_imports
from vs_dvc.case_imports import render_import_costs
from vs_dvc.common import BenchError, Tools, _since, log
from vs_dvc.harness import Bench
from vs_dvc.report import (
    build_rows,
    machine,
    render_cpu,
    render_markdown,
    render_table,
    write_results,
)
from vs_dvc.repos import snapshot_mlbuild


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    default_mlbuild = Path(sys.executable).with_name("mlbuild")
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dvc", default=shutil.which("dvc") or "dvc", help="the dvc binary")
    parser.add_argument("--mlbuild", default=str(default_mlbuild), help="the mlbuild binary")
    parser.add_argument(
        "--stage-python",
        default=sys.executable,
        help="the interpreter the stages run with (same for both tools)",
    )
    parser.add_argument("--files", type=int, default=1000, help="files under data/raw")
    parser.add_argument("--file-size-mb", type=float, default=1.0, help="MiB per file")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; medians are reported")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed repetitions first (fill bytecode caches)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to build the repos (default: a tmp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--results", type=Path, default=None, help="write the results as Markdown to this file"
    )
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw samples here")
    parser.add_argument(
        "--no-dvc-data",
        dest="dvc_data",
        action="store_false",
        help="skip the repo where data/raw is tracked by `dvc add` and read as an ml.yaml dataset",
    )
    parser.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        help="run mlbuild from its installed source instead of a copy taken at the start (the "
        "copy keeps one version of the code for the whole run while the tree is being edited)",
    )
    return parser.parse_args(argv)


# ── generating the repositories ──────────────────────────────────────────────────────────────


def make_tools(args: argparse.Namespace, workdir: Path) -> tuple[Tools, str]:
    """The tools and their environments, and a line saying which mlbuild source is measured."""
    # Both tools run as installed software does: with bytecode caches. This machine's environment
    # sets PYTHONDONTWRITEBYTECODE=1, and an editable install has no .pyc files, so without this
    # every mlbuild command would recompile mlbuild's modules from source (DVC's venv has them).
    # The caches go to a prefix inside the work directory, never into the source tree.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLBUILD_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "DVC_NO_ANALYTICS": "1",
        "NO_COLOR": "1",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }
    tools = Tools(str(args.dvc), str(args.mlbuild), str(args.stage_python), env, dict(env))
    if not args.snapshot:
        return tools, f"- mlbuild source: as installed (`--no-snapshot`), {dt.datetime.now():%H:%M}"
    source, digest = snapshot_mlbuild(tools.mlbuild_python(), env, workdir / "snapshot")
    tools.ml_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(workdir / "snapshot"), env.get("PYTHONPATH")) if p
    )
    log(f"benchmarking a snapshot of {source} ({digest})")
    return tools, (
        f"- mlbuild source: a copy of {source} taken at the start "
        f"({dt.datetime.now():%Y-%m-%d %H:%M}; sha256 of the files {digest})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for binary in (args.dvc, args.mlbuild, args.stage_python):
        if not Path(binary).is_file():
            print(f"bench_vs_dvc: {binary} not found", file=sys.stderr)
            return 2
    if args.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="mlbuild-bench-"))
    else:
        workdir = args.workdir.absolute()
        workdir.mkdir(parents=True, exist_ok=False)
    failed = True
    try:
        tools, source_note = make_tools(args, workdir)
        header = [*machine(tools), source_note]
        bench = Bench(args, tools, workdir)
        started = time.perf_counter()
        bench.setup()
        log(f"set up in {_since(started)}; work directory {workdir}")
        for rep in range(args.warmup):
            began = time.perf_counter()
            bench.rep(rep, record=False)
            log(f"warm-up {rep + 1}/{args.warmup} done in {_since(began)}")
        for rep in range(args.reps):
            began = time.perf_counter()
            bench.rep(rep)
            log(f"repetition {rep + 1}/{args.reps} done in {_since(began)}")
        imports = case_imports.measure(bench)
        failed = False
    except BenchError as exc:
        print(f"bench_vs_dvc: {exc}", file=sys.stderr)
        print(f"bench_vs_dvc: work directory kept: {workdir}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = build_rows(bench.samples, imports)
    print(render_table(rows))
    print()
    print(render_cpu(bench.samples))
    print()
    print(render_import_costs(imports))
    if args.results is not None:
        command = shlex.join([Path(sys.executable).name, *sys.argv])
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        header.append(f"- load average after the run: {load} (other jobs share this machine)")
        text = render_markdown(args, bench.samples, rows, imports, header, command)
        write_results(args.results, text)
        log(f"wrote {args.results}")
    if args.json is not None:
        raw = {
            "values": bench.samples.values,
            "ran": bench.samples.ran,
            "hashing": bench.samples.hashing,
            "imports": {p.label: {"modules": p.modules, "ms": p.costs} for p in imports},
        }
        args.json.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
