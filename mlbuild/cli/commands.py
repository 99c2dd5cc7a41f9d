"""One function per command: parse nothing, call the library, print, return the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlbuild import atomic
from mlbuild.cli.output import (
    Console,
    JsonReporter,
    StepReporter,
    dump_json,
    format_metrics,
    format_value,
    summary_json,
    summary_line,
    table,
)
from mlbuild.cli.shared import parse_assignments
from mlbuild.cli.text import indent, size
from mlbuild.cli.words import one_recipe, split_words
from mlbuild.errors import MlbuildError, Problem, RecipeError, StepFailedError, UsageError
from mlbuild.extras import check_extra

if TYPE_CHECKING:  # the engine loads lazily, when a command needs it
    from mlbuild.cache.remote import RemoteCache, RemoteReport
    from mlbuild.exec import RunSummary
    from mlbuild.graph import Graph, Workspace
    from mlbuild.runs import RecordedRun


def _workspace(args: argparse.Namespace, recipe: Path | None = None) -> Workspace:
    from mlbuild.graph import Workspace

    if recipe is None and args.file:
        recipe = Path(args.file)
    return Workspace.find(Path.cwd(), recipe)


def _check_steps(names: list[str], known: list[str]) -> None:
    from mlbuild.params import suggest

    for name in names:
        if name not in known:
            raise UsageError(
                f"no step named '{name}'{suggest(name, known)}; steps: {', '.join(known)}"
            )


def _check_executor(name: str | None, graph: Graph) -> None:
    """``--executor NAME`` names an executor mlbuild has, with its settings if it needs them."""
    if name is None:
        return
    from mlbuild.exec import EXECUTORS

    if name not in EXECUTORS:
        raise UsageError(
            f"--executor: no executor named '{name}'; executors: {', '.join(sorted(EXECUTORS))}"
        )
    if name not in graph.executors:
        from mlbuild.recipe import needs_settings

        if needs_settings(name):
            raise UsageError(
                f"--executor {name}: {graph.recipe_file} has no settings for it; add them under "
                f"`executors: {{{name}: {{...}}}}` (see `mlbuild schema`)"
            )


def _combinations(ws: Workspace, overrides: list[str], multirun: bool) -> list[list[str]]:
    """One list of overrides per run; with --multirun, every combination of the sweeps and of
    the basic sweeper's ``hydra.sweeper.params`` in the config the fixed overrides compose."""
    if not multirun:
        return [overrides]
    from mlbuild.params import expand_sweeps, sweeps

    swept = set(sweeps(overrides))
    base = ws.graph([o for o in overrides if o not in swept])
    combos: list[list[str]] = expand_sweeps(overrides, base.sweeper)
    return combos


def cmd_init(args: argparse.Namespace) -> int:
    from mlbuild.recipe import SCHEMA_FILE, write_schema
    from mlbuild.recipe.starter import write_starter

    path = write_starter(Path.cwd(), name=args.name, force=args.force)
    write_schema(path.parent / SCHEMA_FILE)
    print(
        f"wrote {path.name} and {SCHEMA_FILE}, which its first line points editors at: commit "
        "both; check the recipe with `mlbuild validate`, then `mlbuild run`"
    )
    return 0


_NAMES_SHOWN = 10  # step names `validate` prints before "… and N more"


def cmd_validate(args: argparse.Namespace) -> int:
    words = split_words(args.args)
    if words.steps:
        raise UsageError(
            f"'{words.steps[0]}' is neither a recipe file (.yaml or .yml) nor an override "
            "(KEY=VALUE, +KEY=VALUE, ~KEY)"
        )
    # None: -f FILE, else the nearest ml.yaml; -f and recipe words must then name one recipe
    recipes: list[Path | None] = [*words.recipes] or [None]
    if args.file and words.recipes:
        recipes = [one_recipe(words, args.file)]
    if args.json and len(recipes) > 1:
        raise UsageError("--json reports on one recipe at a time; name one")
    if len(recipes) == 1:
        return _validate(args, recipes[0], words.overrides)
    worst = 0
    for recipe in recipes:  # each reported in full, as pre-commit passes every changed recipe
        try:
            _validate(args, recipe, words.overrides)
        except MlbuildError as exc:
            print(f"mlbuild: {exc.message}", file=sys.stderr)
            worst = max(worst, exc.exit_code)
    return worst


def _validate(args: argparse.Namespace, recipe: Path | None, overrides: list[str]) -> int:
    ws = _workspace(args, recipe)
    try:
        # a graph compiled from these exact bytes (and params files) was valid: the compiled
        # cache answers without loading pydantic; any change revalidates everything. What the
        # filesystem decides (symlinks, missing inputs) is checked again every time.
        graph = ws.graph(overrides)
        _check_workspace(ws, graph)
    except RecipeError as exc:
        if not args.json:
            raise
        dump_json({"valid": False, "problems": [p._asdict() for p in exc.problems]})
        return exc.exit_code
    finally:
        ws.save_state()
    if args.json:
        dump_json(
            {"valid": True, "name": graph.name, "steps": list(graph.steps), "params": graph.params}
        )
    else:
        count = len(graph.steps)
        names = list(graph.steps)
        # a generated recipe has thousands of steps: one line must stay readable
        shown = ", ".join(names[:_NAMES_SHOWN])
        if count > _NAMES_SHOWN:
            shown += f", … and {count - _NAMES_SHOWN} more (`mlbuild plan` lists them)"
        print(f"{graph.recipe_file}: valid ({count} step{'s' if count != 1 else ''}: {shown})")
    return 0


def _check_workspace(ws: Workspace, graph: Graph) -> None:
    """``ws.check`` and the tests' own checks, reported together."""
    found: list[Problem] = []
    if graph.tests:
        from mlbuild.testing.runner import validate_tests

        found = validate_tests(ws, graph)
    try:
        ws.check(graph)
    except RecipeError as exc:
        if found:
            # a test's step is checked with the rest now: a missing file is named once
            seen = {(p.file, p.line, p.column) for p in exc.problems}
            found = [p for p in found if not _said(p, seen)]
            raise RecipeError([*exc.problems, *found]) from None
        raise
    if found:
        raise RecipeError(found)


def _said(problem: Problem, seen: set[tuple[str, int | None, int | None]]) -> bool:
    """Whether ``problem`` (a test's missing file) is already reported at its place."""
    where = (problem.file, problem.line, problem.column)
    return where in seen and "does not exist and no step makes it" in problem.message


def cmd_schema(args: argparse.Namespace) -> int:
    from mlbuild.recipe import SCHEMA_FILE, check_schema, render_schema, write_schema

    if args.check:
        if args.output:
            raise UsageError("give either --check or -o/--output, not both")
        worst = 0
        for name in args.files or [SCHEMA_FILE]:  # each reported, as pre-commit passes them all
            try:
                check_schema(Path(name), name)
            except MlbuildError as exc:
                print(f"mlbuild: {exc.message}", file=sys.stderr)
                worst = max(worst, exc.exit_code)
        return worst
    if args.files:
        raise UsageError("schema files are named with --check FILE… (or -o FILE to write one)")
    if args.output:
        wrote = write_schema(Path(args.output))
        print(f"{'wrote' if wrote else 'unchanged:'} {args.output}")
        return 0
    sys.stdout.write(render_schema())
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import dataclasses

    from mlbuild.graph import make_plan

    words = split_words(args.args)
    ws = _workspace(args, one_recipe(words, args.file))
    names, overrides = words.steps, words.overrides
    from mlbuild.exec import Executors, describe, external_hook, identity_hook

    reports = []
    remote = None
    try:
        for combo in _combinations(ws, overrides, args.multirun):
            graph = ws.graph(combo)
            _check_steps(names, list(graph.steps))
            _check_executor(args.executor, graph)
            executors = Executors(graph.executors)
            if args.isolated:
                graph = dataclasses.replace(graph, isolated=True)
            if args.allow_failing_tests:
                graph = dataclasses.replace(graph, allow_failing_tests=True)
            remote = remote or _remote(args, ws, graph, lambda _step, text: _warn(text))
            planner = ws.planner(
                graph,
                force=set(graph.upstream_closure(names or graph.default_targets()))
                if args.force
                else None,
                identity=identity_hook(executors, args.executor),
                remote=remote,
                external=external_hook(graph, ws),
            )
            try:
                wanted = graph.upstream_closure(names or graph.default_targets())
                planned = make_plan(planner, wanted)
            finally:
                executors.close()
            reports.append((combo, [(d, describe(graph.steps[d.step])) for d in planned]))
    finally:
        ws.save_state()
    if args.json:
        dump_json(
            [
                {
                    "overrides": combo,
                    "steps": [
                        {
                            "name": d.step,
                            "action": d.action.value,
                            "source": d.source if d.result is not None else None,
                            "reasons": d.reasons,
                            "fingerprint": d.fingerprint,
                            "what": what,
                        }
                        for d, what in decisions
                    ],
                }
                for combo, decisions in reports
            ]
        )
        return 0
    for combo, decisions in reports:
        title = f"plan ({' '.join(combo)})" if combo else "plan"
        print(title + ":")
        rows = [[d.step, d.label, "; ".join(d.reasons)] for d, _ in decisions]
        print(indent(table(rows, ["STEP", "ACTION", "WHY"])))
        will = sum(1 for d, _ in decisions if d.action.value in ("run", "restore"))
        maybe = sum(1 for d, _ in decisions if d.action.value == "pending")
        tail = f", {maybe} more if upstream outputs change" if maybe else ""
        print(f"{will} of {len(decisions)} steps will run or be restored{tail}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return cmd_plan(args)
    from mlbuild.exec import run_lock
    from mlbuild.runs import recorded_run
    from mlbuild.store import recorder_store

    if args.jobs < 1:
        raise UsageError(f"-j/--jobs must be at least 1, got {args.jobs}")
    tags = parse_assignments(args.tag, "--tag")
    words = split_words(args.args)
    ws = _workspace(args, one_recipe(words, args.file))
    names, overrides = words.steps, words.overrides
    combos = _combinations(ws, overrides, args.multirun)
    console = Console()
    from mlbuild.cli.sections import GitLabSections, step_reporter

    reporter: StepReporter | GitLabSections | JsonReporter = (
        JsonReporter() if args.json else step_reporter(console, quiet=args.quiet)
    )
    summaries = []
    run_ids = []
    remote = None
    try:
        with run_lock(
            ws.meta, wait=args.wait, on_wait=lambda text: print(f"mlbuild: {text}", file=sys.stderr)
        ):
            store = None
            for combo in combos:
                graph, isolation = _run_graph(args, ws, combo, names)
                _check_executor(args.executor, graph)
                store = store or recorder_store(ws.meta, graph.store_url)
                remote = remote or _remote(args, ws, graph, None)
                if len(combos) > 1 and not args.json:
                    console.print(console.paint(f"── {' '.join(combo)}", "bold"))
                recorded = recorded_run(
                    ws,
                    store,
                    graph,
                    targets=names,
                    force=args.force,
                    jobs=args.jobs,
                    reporter=reporter,
                    tags=tags,
                    notes=args.note,
                    isolation=isolation,
                    keep_going=args.keep_going,
                    executor=args.executor,
                    remote=remote,
                )
                summary = recorded.summary
                summaries.append(summary)
                if not summary.failed and summary.data:
                    from mlbuild.data import record_run

                    record_run(ws.meta, summary.data)
                run_ids.append(recorded.record.id)
                if not args.json:
                    console.print(_recorded_line(recorded))
                if summary.failed:
                    break
    finally:
        reporter.close()
        ws.save_state()
    if args.json:
        documents = [
            {**summary_json(s), "run_id": run_id}
            for s, run_id in zip(summaries, run_ids, strict=True)
        ]
        dump_json(documents[0] if not args.multirun else documents)
    else:
        if remote is not None and (remote.report.fetched or remote.report.uploaded):
            console.print(_remote_line(remote.report))
        _print_metrics(console, summaries, args.multirun)
    _raise_failures(console, summaries, table_too=not args.json)
    return 0


def _run_graph(
    args: argparse.Namespace, ws: Workspace, combo: list[str], names: list[str]
) -> tuple[Graph, dict[str, str] | None]:
    """The graph to run (marked isolated for ``--isolated`` or ``environment.isolated``) and the
    variables that run its steps in the environment built from the lock, if isolated."""
    import dataclasses

    graph = ws.graph(combo)
    _check_steps(names, list(graph.steps))
    if args.allow_failing_tests:
        graph = dataclasses.replace(graph, allow_failing_tests=True)
    if not (args.isolated or graph.isolated):
        return graph, None
    from mlbuild.cli.package_commands import isolation

    graph = dataclasses.replace(graph, isolated=True)
    return graph, isolation(ws, graph)


def _remote(
    args: argparse.Namespace,
    ws: Workspace,
    graph: Graph,
    warn: Callable[[str, str], None] | None,
) -> RemoteCache | None:
    """The remote cache this command uses, or None (``--no-remote``, or none configured)."""
    if args.no_remote:
        return None
    remote = ws.remote(graph, read_only=getattr(args, "read_only", False))
    if remote is not None and warn is not None:
        remote.warn = warn
    return remote


def _warn(text: str) -> None:
    print(f"mlbuild: {text}", file=sys.stderr)


def _remote_line(report: RemoteReport) -> str:
    """``remote cache s3://b/p: fetched 4 results (1.2 MiB), uploaded 0``."""
    fetched = f"fetched {report.fetched} result{'s' if report.fetched != 1 else ''}"
    uploaded = f"uploaded {report.uploaded}"
    return (
        f"remote cache {report.remote}: {fetched} ({size(report.fetched_bytes)}), "
        f"{uploaded} ({size(report.uploaded_bytes)})"
    )


def _raise_failures(console: Console, summaries: list[RunSummary], *, table_too: bool) -> None:
    """Raise :class:`StepFailedError` naming every failed step; with more than one, a table of
    them all first (``--keep-going`` reports every failure at the end)."""
    failed = [o for s in summaries for o in s.failed]
    if not failed:
        return
    if len(failed) > 1 and table_too:
        rows = [[o.name, o.message, o.log or ""] for o in failed]
        console.print(f"{len(failed)} steps failed:")
        console.print(indent(table(rows, ["STEP", "MESSAGE", "LOG"])))
    first = failed[0]
    log = f"; log: {first.log}" if first.log else ""
    names_failed = ", ".join(f"'{o.name}'" for o in failed)
    raise StepFailedError(f"step {names_failed} failed: {first.message}{log}")


def _recorded_line(recorded: RecordedRun) -> str:
    """The run's summary and record id; a run that executed nothing is hidden from `runs list`
    (see mlbuild/store/listing.py), so it says where to find it."""
    noop = not recorded.summary.failed and all(s.cache_hit for s in recorded.record.steps)
    hidden = " (it executed nothing: `runs list --all` shows it)" if noop else ""
    return f"{summary_line(recorded.summary)}; recorded as run {recorded.record.id[:8]}{hidden}"


def _print_metrics(console: Console, summaries: list[RunSummary], multirun: bool) -> None:
    if multirun and len(summaries) > 1:
        keys = sorted({k for s in summaries for k in s.metrics})
        rows = [
            [" ".join(s.overrides), *(format_value(s.metrics.get(k, "")) for k in keys)]
            for s in summaries
        ]
        console.print(table(rows, ["OVERRIDES", *keys]))
    elif summaries and summaries[0].metrics:
        console.print(f"metrics: {format_metrics(summaries[0].metrics)}")


def cmd_status(args: argparse.Namespace) -> int:
    import time

    from mlbuild.graph import make_plan

    ws = _workspace(args)
    try:
        graph = ws.graph(list(args.overrides))
        decisions = make_plan(ws.planner(graph), graph.default_targets())
    finally:
        ws.save_state()
    states = {
        "cached": "up to date",
        "restore": "restorable from cache",
        "run": "changed",
        "pending": "waits on upstream",
    }
    rows = []
    data = []
    for d in decisions:
        record = ws.records.get(d.step)
        last = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.finished))
            if record
            else "never"
        )
        took = f"{record.duration:.2f}s" if record else ""
        if record and record.how == "restored":
            took += " (restored)"
        rows.append([d.step, states[d.action.value], last, took, d.reasons[0] if d.reasons else ""])
        data.append(
            {
                "name": d.step,
                "state": d.action.value,
                "reasons": d.reasons,
                "last_run": record.finished if record else None,
                "duration": record.duration if record else None,
            }
        )
    if args.json:
        dump_json(data)
    else:
        print(table(rows, ["STEP", "STATE", "LAST RUN", "TOOK", "WHY"]))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from mlbuild.runs import collect_garbage

    ws = _workspace(args)
    try:
        graph = ws.graph([])
    finally:
        ws.save_state()
    outcome = collect_garbage(
        ws,
        graph.store_url,
        keep_days=args.keep_days,
        dry_run=args.dry_run,
        wait=args.wait,
        on_wait=lambda text: print(f"mlbuild: {text}", file=sys.stderr),
    )
    report = outcome.report
    if args.json:
        dump_json(
            {**report.__dict__, "workspaces": outcome.workspaces, "forgotten": outcome.forgotten}
        )
        return 0
    verb = "would remove" if args.dry_run else "removed"
    shared = len(outcome.workspaces)
    print(
        f"{verb} {report.actions_removed} cached results and {report.objects_removed} objects "
        f"({size(report.bytes_freed)}); kept {report.actions_kept} results, "
        f"{report.objects_kept} objects"
        + (f" for {shared} workspaces sharing the cache" if shared > 1 else "")
    )
    for root in outcome.forgotten:
        print(
            f"{'would forget' if args.dry_run else 'forgot'} workspace {root}: it no longer exists"
        )
    if report.quarantined:
        print(
            f"{report.quarantined} damaged files are in quarantine at "
            f"{ws.cache.objects.quarantine}; gc never deletes them: look, then remove them"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    check_extra("serve", "`mlbuild serve`")
    from mlbuild.serve import ServerOptions, resolve_model, serve

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    from mlbuild.cli.package_commands import bundle_to_serve

    bundle = bundle_to_serve(args.overrides)
    if bundle is not None:
        source, state_dir = bundle.model_source(), bundle.state_dir
    else:
        ws = _workspace(args)
        try:
            source = resolve_model(ws, ws.graph(list(args.overrides)))
        finally:
            ws.save_state()
        state_dir = ws.meta / "serving"
    options = ServerOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_body=args.max_body_size,
        token_env=args.token_env,
        token_file=args.token_file,
        access_log=args.access_log,
        threads=args.threads,
        queue=args.queue,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
    )
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    auth = "bearer token required" if args.token_env or args.token_file else "no auth"
    banner = (
        f"mlbuild: serving model '{source.name}' version {source.version} on "
        f"http://{args.host}:{args.port} ({workers}, {auth}); Ctrl-C stops"
    )
    try:
        serve(
            source,
            options,
            state_dir,
            announce=lambda: print(banner, file=sys.stderr, flush=True),
        )
    finally:
        if bundle is not None:
            bundle.close()
    print("mlbuild: server stopped", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    check_extra("serve", "`mlbuild predict`")
    from mlbuild.serve import InvalidInput, ModelRuntime, predict_file, resolve_model

    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"{args.input}: no such file")
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise UsageError(f"{args.input}: expected a .csv or .jsonl file, got '{path.suffix}'")
    if args.output is not None and Path(args.output).is_dir():
        raise UsageError(f"-o {args.output} is a directory; name a file")
    ws = _workspace(args)
    try:
        source = resolve_model(ws, ws.graph(list(args.overrides)))
    finally:
        ws.save_state()
    runtime = ModelRuntime.load(source)
    try:
        if args.output is None:
            rows = predict_file(runtime, path, sys.stdout)
        else:  # whole or not at all: a bad row leaves no half-scored file (nor the old one gone)
            with (
                atomic.replacing(Path(args.output)) as tmp,
                open(tmp, "w", encoding="utf-8", newline="") as out,
            ):
                rows = predict_file(runtime, path, out)
    except InvalidInput as exc:
        raise UsageError(f"{args.input}: {exc.message}") from None
    print(
        f"mlbuild: scored {rows} row{'s' if rows != 1 else ''} with model '{runtime.name}' "
        f"version {runtime.version}",
        file=sys.stderr,
    )
    return 0
