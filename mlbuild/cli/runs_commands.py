"""``mlbuild runs …``: one function per command, printing what the run store answers as a table,
JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.cli.shared import open_store_here, parse_assignments
from mlbuild.cli.text import dump_json, format_value, indent, size, table, when
from mlbuild.errors import ReproduceError, UsageError
from mlbuild.nested import leaves

if TYPE_CHECKING:  # the engine and the store load lazily, when a command needs them
    from mlbuild.graph import Workspace
    from mlbuild.runs.reproduce import Comparison, Skipped
    from mlbuild.store import RunRecord, RunStore

_METRIC_COLUMNS = 5  # a terminal table shows at most this many metrics; --json has them all


def _workspace_and_store(args: argparse.Namespace) -> tuple[Workspace, RunStore]:
    from mlbuild.graph import Workspace
    from mlbuild.store import open_workspace_store

    ws = Workspace.find(Path.cwd(), Path(args.file) if args.file else None)
    return ws, open_workspace_store(ws.meta, ws.graph([]).store_url)


def cmd_runs_list(args: argparse.Namespace) -> int:
    from mlbuild.store import RunQuery, parse_condition, parse_sort, parse_tag_condition

    if args.limit < 0:
        raise UsageError(f"-n/--limit must be 0 (all) or more, got {args.limit}")
    sort, descending = parse_sort(args.sort)
    query = RunQuery(
        params=[parse_condition(c, "--param") for c in args.param],
        metrics=[parse_condition(c, "--metric") for c in args.metric],
        tags=[parse_tag_condition(c) for c in args.tag],
        statuses=args.status,
        commit=args.commit,
        kind=args.kind,
        sort=sort,
        descending=descending,
        limit=args.limit or None,
        include_noop=args.all,
    )
    store = open_store_here(args.file)
    found = store.list_runs(query)
    if args.json:
        dump_json([_summary(r) for r in found])
    elif args.csv:
        _write_csv(found)
    else:
        if found:
            print(_runs_table(found, sort))
        else:
            total = store.count_runs()
            print("no runs recorded yet" if total == 0 else f"no run of {total} matches")
        everything = replace(query, include_noop=True)
        hidden = 0 if args.all else store.count_runs(everything) - store.count_runs(query)
        if hidden:
            print(
                f"({hidden} run{'s' if hidden != 1 else ''} that executed nothing, every step "
                "cached, not shown; `--all` lists them)"
            )
    return 0


def _summary(run: RunRecord) -> dict[str, Any]:
    data: dict[str, Any] = run.to_json()
    del data["steps"], data["artifacts"]
    return data


def _runs_table(found: list[RunRecord], sort: str) -> str:
    keys = sorted({k for r in found for k in r.metrics})
    if sort in keys:
        keys.remove(sort)
        keys.insert(0, sort)
    keys = keys[:_METRIC_COLUMNS]
    rows = [
        [
            r.id[:8],
            when(r.started),
            r.status.value,
            _commit(r),
            _took(r.duration),
            " ".join(r.overrides),
            *(format_value(r.metrics.get(k, "")) for k in keys),
            ",".join(f"{k}={v}" for k, v in r.tags.items()),
        ]
        for r in found
    ]
    return table(rows, ["RUN", "STARTED", "STATUS", "COMMIT", "TOOK", "OVERRIDES", *keys, "TAGS"])


def _write_csv(found: list[RunRecord]) -> None:
    params = sorted({k for r in found for k in leaves(r.params)})
    metrics = sorted({k for r in found for k in r.metrics})
    tags = sorted({k for r in found for k in r.tags})
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "id",
            "kind",
            "status",
            "started",
            "duration",
            "recipe",
            "git_commit",
            "git_branch",
            "git_dirty",
            "user",
            "host",
            "overrides",
            *(f"param.{k}" for k in params),
            *(f"metric.{k}" for k in metrics),
            *(f"tag.{k}" for k in tags),
        ]
    )
    for r in found:
        flat = leaves(r.params)
        writer.writerow(
            [
                r.id,
                r.kind,
                r.status.value,
                time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(r.started)),
                "" if r.duration is None else round(r.duration, 3),
                r.recipe_name,
                r.git.commit if r.git else "",
                (r.git.branch or "") if r.git else "",
                r.git.dirty if r.git else "",
                r.user,
                r.host,
                " ".join(r.overrides),
                *(flat.get(k, "") for k in params),
                *(r.metrics.get(k, "") for k in metrics),
                *(r.tags.get(k, "") for k in tags),
            ]
        )


def cmd_runs_show(args: argparse.Namespace) -> int:
    store = open_store_here(args.file)
    run = store.get_run(args.run)
    if args.json:
        dump_json(run.to_json())
        return 0
    git = "not a git repository"
    if run.git:
        git = f"{run.git.commit[:12]} on {run.git.branch or '(detached HEAD)'}"
        if run.git.dirty:
            git += f", with uncommitted changes (diff {(run.git.diff_hash or '')[:12]})"
    facts = [
        ["recipe", f"{run.recipe_name} ({(run.recipe_hash or 'unknown')[:12]})"],
        ["kind", run.kind],
        ["started", f"{when(run.started, seconds=True)}, took {_took(run.duration) or '-'}"],
        ["git", git],
        ["by", f"{run.user}@{run.host} (pid {run.pid})"],
        ["python", f"{run.python}, lock {(run.lock_hash or 'none')[:12]}"],
        ["overrides", " ".join(run.overrides) or "none"],
        ["tags", ", ".join(f"{k}={v}" for k, v in run.tags.items()) or "none"],
    ]
    if run.notes:
        facts.append(["notes", run.notes])
    print(f"run {run.id} ({run.status.value})")
    print(indent(table(facts, ["", ""]).split("\n", 1)[1]))
    _section("params", [[k, format_value(v)] for k, v in sorted(leaves(run.params).items())])
    _section("metrics", [[k, format_value(v)] for k, v in sorted(run.metrics.items())])
    _section("data versions", [[k, v] for k, v in sorted(run.data_versions.items())])
    _section(
        "steps",
        [
            [
                s.name,
                s.status,
                "hit" if s.cache_hit else "",
                _took(s.duration),
                _short(s.fingerprint),
            ]
            for s in run.steps
        ],
        ["STEP", "STATUS", "CACHE", "TOOK", "FINGERPRINT"],
    )
    _section(
        "artifacts",
        [
            [
                a.path,
                a.step,
                size(a.size),
                _short(a.digest) + ("" if a.cached else " (not cached)"),
            ]
            for a in run.artifacts
        ],
        ["PATH", "STEP", "SIZE", "DIGEST"],
    )
    return 0


def cmd_runs_compare(args: argparse.Namespace) -> int:
    if len(args.runs) < 2:
        raise UsageError("runs compare needs at least two runs")
    store = open_store_here(args.file)
    found = [store.get_run(r) for r in args.runs]
    rows = _comparison(found)
    if args.diff:
        rows = [r for r in rows if r[2]]
    ids = [r.id[:8] for r in found]
    if args.json:
        dump_json(
            {
                "runs": [r.id for r in found],
                "rows": [
                    {"section": s, "key": k, "differs": d, "values": v} for s, k, d, v in rows
                ],
            }
        )
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["section", "key", "differs", *(r.id for r in found)])
        for section, key, differs, values in rows:
            writer.writerow([section, key, differs, *("" if v is None else v for v in values)])
    else:
        body = [
            ["*" if differs else "", f"{section} {key}", *(_cell(v) for v in values)]
            for section, key, differs, values in rows
        ]
        print(table(body, ["", "", *ids]))
        count = sum(1 for r in rows if r[2])
        print(f"{count} difference{'s' if count != 1 else ''} (marked *)")
    return 0


def _comparison(found: list[RunRecord]) -> list[tuple[str, str, bool, list[Any]]]:
    """Rows of (section, key, differs, one value per run)."""
    columns: dict[tuple[str, str], list[Any]] = {}

    def put(section: str, key: str, index: int, value: Any) -> None:
        columns.setdefault((section, key), [None] * len(found))[index] = value

    for i, run in enumerate(found):
        put("run", "status", i, run.status.value)
        put("run", "overrides", i, " ".join(run.overrides))
        for key, value in sorted(leaves(run.params).items()):
            put("param", key, i, value)
        for key, value in run.metrics.items():
            put("metric", key, i, value)
        for key, value in run.data_versions.items():
            put("data", key, i, value)
        put("env", "git commit", i, run.git.commit[:12] if run.git else None)
        put("env", "uncommitted diff", i, (run.git.diff_hash or "")[:12] if run.git else None)
        put("env", "recipe", i, (run.recipe_hash or "")[:12])
        put("env", "lock", i, (run.lock_hash or "")[:12] or None)
        put("env", "python", i, run.python)
        for artifact in run.artifacts:
            put("artifact", artifact.path, i, artifact.digest[:12])
    order = {"run": 0, "param": 1, "metric": 2, "data": 3, "env": 4, "artifact": 5}
    return [
        (section, key, len({repr(v) for v in values}) > 1, values)
        for (section, key), values in sorted(
            columns.items(), key=lambda i: (order[i[0][0]], i[0][1])
        )
    ]


def cmd_runs_tag(args: argparse.Namespace) -> int:
    tags = parse_assignments(args.tags, "tag")
    if not tags and not args.remove and args.note is None:
        raise UsageError("give tags as KEY=VALUE, --remove KEY or --note TEXT")
    store = open_store_here(args.file)
    run = store.get_run(args.run)
    if tags or args.remove:
        run = store.set_tags(run.id, tags, args.remove)
    if args.note is not None:
        run = store.set_notes(run.id, args.note)
    if args.json:
        dump_json({"id": run.id, "tags": run.tags, "notes": run.notes})
    else:
        shown = ", ".join(f"{k}={v}" for k, v in run.tags.items()) or "none"
        print(f"run {run.id[:8]}: tags {shown}")
    return 0


def cmd_runs_get(args: argparse.Namespace) -> int:
    from mlbuild.runs import get_artifact

    ws, store = _workspace_and_store(args)
    run = store.get_run(args.run)
    dest = get_artifact(ws, run, args.path, Path(args.output), force=args.force)
    print(f"restored {args.path.rstrip('/')} of run {run.id[:8]} to {dest}")
    return 0


def cmd_runs_reproduce(args: argparse.Namespace) -> int:
    from mlbuild.exec import run_lock
    from mlbuild.runs.reproduce import reproduce

    if args.jobs < 1:
        raise UsageError(f"-j/--jobs must be at least 1, got {args.jobs}")
    from mlbuild.cli.output import Console, JsonReporter, StepReporter

    ws, store = _workspace_and_store(args)
    console = Console()
    reporter: JsonReporter | StepReporter = (
        JsonReporter() if args.json else StepReporter(console, quiet=args.quiet)
    )
    try:
        with run_lock(ws.meta, wait=False, on_wait=lambda text: None):
            result = reproduce(
                ws,
                store,
                args.run,
                jobs=args.jobs,
                reporter=reporter,
                anyway=args.anyway,
                tolerance=args.tolerance,
            )
    finally:
        reporter.close()
        ws.save_state()
    original, new = result.original.id, result.rerun.record.id
    if args.json:
        dump_json(
            {
                "run": original,
                "new_run": new,
                "matches": result.matches,
                "checks": [c.__dict__ | {"matches": c.matches} for c in result.checks],
                "outputs": [c.__dict__ | {"matches": c.matches} for c in result.outcome],
                "skipped": [s.__dict__ for s in result.skipped],
            }
        )
    else:
        rows = [
            [c.kind, c.name, c.recorded, c.now, "yes" if c.matches else "NO"]
            for c in [*result.checks, *result.outcome]
        ]
        rows += [["artifact", s.path, "", "", f"not compared ({s.reason})"] for s in result.skipped]
        print(table(rows, ["", "", "RECORDED", "NOW", "MATCH"]))
    if result.rerun.summary.failed:
        first = result.rerun.summary.failed[0]
        raise ReproduceError(
            f"run {original[:8]} did not reproduce: step '{first.name}' failed: {first.message} "
            f"(new run {new[:8]})"
        )
    differ = [c for c in result.outcome if not c.matches]
    if differ:
        what = _counted(differ, names=True)
        raise ReproduceError(
            f"run {original[:8]} did not reproduce: {what} differ (new run {new[:8]})"
            f"{_not_compared(result.skipped)}"
        )
    if not args.json:
        print(
            f"run {original[:8]} reproduced: {_counted(result.outcome, names=False)} match "
            f"(new run {new[:8]}){_not_compared(result.skipped)}"
        )
    return 0


def _not_compared(skipped: list[Skipped]) -> str:
    if not skipped:
        return ""
    shown = ", ".join(f"{s.path} ({s.reason})" for s in skipped)
    return f"; not compared, as declared: {shown}"


def _counted(items: list[Comparison], *, names: bool) -> str:
    """``3 artifacts and 1 metric``, or with ``names``: ``artifacts a, b and metric m``."""
    parts = []
    for kind in ("artifact", "metric"):
        of_kind = [c.name for c in items if c.kind == kind]
        plural = "s" if len(of_kind) != 1 else ""
        if names and of_kind:
            parts.append(f"{kind}{plural} {', '.join(of_kind)}")
        elif not names:
            parts.append(f"{len(of_kind)} {kind}{plural}")
    return " and ".join(parts)


def _section(title: str, rows: list[list[str]], headers: list[str] | None = None) -> None:
    print(f"{title}:")
    if not rows:
        print("  none")
    elif headers is None:
        print(indent(table(rows, ["", ""]).split("\n", 1)[1]))
    else:
        print(indent(table(rows, headers)))


def _took(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f}s"


def _commit(run: RunRecord) -> str:
    if run.git is None:
        return "-"
    return str(run.git.commit[:8]) + ("+" if run.git.dirty else "")


def _short(digest: str | None) -> str:
    return (digest or "")[:12]


def _cell(value: object) -> str:
    return "-" if value is None else str(format_value(value))
