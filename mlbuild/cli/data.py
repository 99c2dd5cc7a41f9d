"""``mlbuild data status`` and ``mlbuild push``: the DVC side of a workspace."""

from __future__ import annotations

import argparse

from mlbuild.cli.commands import _workspace
from mlbuild.cli.output import dump_json, table
from mlbuild.errors import UsageError


def cmd_data_status(args: argparse.Namespace) -> int:
    from mlbuild.data import DataVersion, compare, last_run

    ws = _workspace(args)
    graph = ws.graph([])
    if not graph.datasets:
        raise UsageError(f"{graph.recipe_file} declares no datasets; add them under `data:`")
    planner = ws.planner(graph)
    previous = last_run(ws.meta)
    statuses = []
    for name, spec in graph.datasets.items():
        if planner.data.kind(name) == "file":
            digest = ws.cache.hasher.digest(spec.path)
            current = DataVersion(name, spec.path, "file", digest.value if digest else "missing")
        else:
            current = planner.data.version(name)
        statuses.append(compare(ws.root, current, previous.get(name)))
    ws.save_state()
    if args.json:
        dump_json([s.to_json() for s in statuses])
        return 0
    rows = [
        [s.name, s.path, s.kind, s.version[:12], (s.last_run or "")[:12], s.state] for s in statuses
    ]
    print(table(rows, ["DATASET", "PATH", "KIND", "VERSION", "LAST RUN", "STATE"]))
    for s in statuses:
        if s.changed_files:
            shown = s.changed_files[:20]
            more = len(s.changed_files) - len(shown)
            print(f"\n{s.name}: {len(s.changed_files)} files changed since the last run")
            print(
                "\n".join(f"  {line}" for line in shown)
                + (f"\n  … and {more} more" if more else "")
            )
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    ws = _workspace(args)
    graph = ws.graph([])
    planner = ws.planner(graph)
    outs = [o.path for s in graph.steps.values() for o in s.outs if o.dvc]
    targets: dict[str | None, list[str]] = {}
    for path in outs:
        targets.setdefault(args.remote, []).append(path)
    for name, spec in graph.datasets.items():
        if planner.data.kind(name) == "dvc":
            targets.setdefault(args.remote or spec.remote, []).append(spec.path)
    if not targets:
        raise UsageError(
            "nothing to push: no dataset is tracked by DVC and no output has `dvc: true`"
        )
    adapter = planner.data.adapter()
    report = []
    for remote, paths in targets.items():
        pushed = adapter.push(paths, remote)
        report.append({"remote": remote, "paths": paths, "files_pushed": pushed})
        if not args.json:
            where = f"remote '{remote}'" if remote else "the default DVC remote"
            print(f"pushed {pushed} file(s) to {where}: {', '.join(paths)}")
    if args.json:
        dump_json(report)
    return 0
