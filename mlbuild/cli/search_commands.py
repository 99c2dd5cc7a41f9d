"""``mlbuild search``: run a search, show its study, open optuna-dashboard on it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.cli.commands import _workspace
from mlbuild.cli.output import Console, dump_json, format_value, table
from mlbuild.cli.words import one_recipe, split_words
from mlbuild.errors import EXIT_FAILURE, InterruptError, NotFoundError, UsageError
from mlbuild.extras import check_extra

if TYPE_CHECKING:
    from mlbuild.graph import Graph, Workspace
    from mlbuild.search import SearchSpec

_SUBCOMMANDS = ("show", "dashboard")


@dataclass(frozen=True)
class _Prepared:
    """What ``--jobs N`` prepared before forking its workers: the workspace, the search compiled
    with the command line's overrides, and the study's storage (its connections closed)."""

    ws: Workspace
    spec: SearchSpec
    graph: Graph
    study: str
    url: str
    storage: object  # Optuna's storage, which only mlbuild.search looks into


# Set by ``--jobs N`` while its forked workers start, under the search's name; a forked worker
# (running ``main`` on its ``--worker`` command line, for the CLI's own errors, Ctrl-C and exit
# codes) takes it instead of compiling the recipe and opening the storage again, and leaves the
# study's report to its parent.
_inherited: dict[str, _Prepared] = {}


def cmd_search(args: argparse.Namespace) -> int:
    words = list(args.words)
    action = words.pop(0) if words[0] in _SUBCOMMANDS else "run"
    if not words:
        raise UsageError(f"mlbuild search {action} needs the name of a search of the recipe")
    name = words.pop(0)
    got = _inherited.get(name) if action == "run" and args.worker else None
    if got is not None:
        return _run(args, got.ws, got.spec, got.graph, [], got)
    split = split_words(words)
    if split.steps:
        raise UsageError(
            f"'{split.steps[0]}' is not an override (KEY=VALUE, +KEY=VALUE, ~KEY); mlbuild "
            "search takes one search's name, then overrides"
        )
    ws = _workspace(args, one_recipe(split, args.file))
    check_extra("search", "mlbuild search")
    from mlbuild.search import load_search

    spec, graph = load_search(ws, name, split.overrides)
    if action == "show":
        return _show(args, ws, spec)
    if action == "dashboard":
        return _dashboard(args, ws, spec)
    return _run(args, ws, spec, graph, split.overrides)


def _run(
    args: argparse.Namespace,
    ws: Workspace,
    spec: SearchSpec,
    graph: Graph,
    overrides: list[str],
    inherited: _Prepared | None = None,
) -> int:
    from mlbuild.search import (
        close_connections,
        display_url,
        load_study,
        prepare_study,
        run_worker,
        run_workers,
        study_report,
        write_best,
    )

    if args.worker and args.jobs > 1:
        raise UsageError("--worker runs one worker; start it once per worker (or use --jobs N)")
    console = Console(sys.stderr if args.json else sys.stdout)
    if inherited is not None:
        study_name, url, storage = inherited.study, inherited.url, inherited.storage
    else:
        study_name, url, storage = prepare_study(ws, spec)
    if not args.worker:
        limit = spec.limit()
        what = f"{limit} trials" if limit is not None else "trials"
        seed = f", seed {spec.seed}" if spec.seed is not None else ""
        console.print(
            f"search {spec.name}: study {study_name} in {display_url(url)}; {what} "
            f"({spec.sampler} sampler{seed}, {spec.pruner} pruner), "
            f"{args.jobs} worker{'s' if args.jobs > 1 else ''}"
        )
    results: list[Any] = []

    def on_trial(result: Any) -> None:
        results.append(result)
        console.print(_trial_line(result, spec))

    try:
        if args.jobs > 1:
            from mlbuild.cli.main import main

            close_connections(storage)
            _inherited[spec.name] = _Prepared(ws, spec, graph, study_name, url, storage)
            try:
                recipe = ["-f", str(ws.recipe_path)]
                run_workers(ws, spec.name, overrides, args.jobs, recipe, fork=main)
            finally:
                _inherited.clear()
        else:
            run_worker(
                ws,
                spec,
                graph,
                study_name=study_name,
                url=url,
                reporter=_Quiet(),
                on_trial=on_trial,
                on_wait=lambda text: print(f"mlbuild: {text}", file=sys.stderr),
                storage=storage,
            )
    except (KeyboardInterrupt, InterruptError):
        print(
            f"mlbuild: search {spec.name} stopped; the study keeps its trials: run "
            f"`mlbuild search {spec.name}` again to resume",
            file=sys.stderr,
        )
        raise
    if inherited is not None:
        return 0  # a forked worker: its parent reports the study once they are all done
    study = load_study(storage, study_name)
    assert study is not None
    report = study_report(study, spec, top=5)
    write_best(ws, spec.name, report)  # for the steps that take the best params
    if args.worker:
        return 0
    if args.json:
        dump_json(
            {**report.to_json(), "storage": display_url(url), "trials": [_json(r) for r in results]}
        )
    else:
        _print_best(console, report, spec)
    if not report.best:
        raise _no_trial(report, spec)
    return 0


class _Quiet:
    """Trials print one line each; their steps' output stays in the steps' logs."""

    def step_started(self, name: str, reasons: list[str]) -> None:
        pass

    def step_output(self, name: str, line: str) -> None:
        pass

    def step_note(self, name: str, text: str) -> None:
        pass

    def step_finished(self, outcome: Any) -> None:
        pass


def _trial_line(result: Any, spec: Any) -> str:
    params = " ".join(f"{k}={format_value(v)}" for k, v in result.params.items())
    run = f", run {result.run_id[:8]}" if result.run_id else ""
    if result.state in ("ran", "cached"):
        values = ", ".join(
            f"{o.metric} {format_value(v)}"
            for o, v in zip(spec.objectives, result.values, strict=False)
        )
        took = f"{result.duration:.1f} s" if result.state == "ran" else "from the cache"
        return f"trial {result.number} {result.state}: {params} → {values} ({took}{run})"
    if result.state == "pruned":
        where = f" (run {result.run_id[:8]})" if result.run_id else ""
        return f"trial {result.number} pruned {result.message}: {params}{where}"
    return f"trial {result.number} failed: {params}: {result.message}"


def _json(result: Any) -> dict[str, Any]:
    return {
        "number": result.number,
        "state": result.state,
        "params": result.params,
        "values": result.values,
        "run_id": result.run_id,
        "message": result.message,
    }


def _print_best(console: Console, report: Any, spec: Any) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(report.counts.items()))
    console.print(f"study {report.study}: {counts or 'no trials'}")
    if not report.best:
        return
    label = "best" if len(report.best) == 1 else f"Pareto front ({len(report.best)} trials)"
    console.print(f"{label}:")
    for row in report.best:
        console.print("  " + _row_text(row, spec))


def _row_text(row: Any, spec: Any) -> str:
    values = "  ".join(
        f"{o.metric}={format_value(v)}"
        for o, v in zip(spec.objectives, row.values or [], strict=False)
    )
    params = "  ".join(f"{k}={format_value(v)}" for k, v in row.params.items())
    run = f"  run {row.run_id[:8]}" if row.run_id else ""
    return f"trial {row.number}  {values}  {params}{run}"


def _no_trial(report: Any, spec: Any) -> UsageError:
    error = UsageError(
        f"no trial of study {report.study} has finished yet; see the failed trials with "
        f"`mlbuild search show {spec.name}` and their runs with `mlbuild runs list --all`"
    )
    error.exit_code = EXIT_FAILURE
    return error


def _current_study(args: argparse.Namespace, ws: Any, spec: Any) -> tuple[Any, str, str | None]:
    """The study to show, read-only: ``--study``, else the one for the current inputs, else the
    newest of the search (with a note saying so)."""
    from mlbuild.search import storage_url
    from mlbuild.search.naming import default_study_name
    from mlbuild.search.reader import read_study, read_study_names

    url = storage_url(spec, ws.meta)
    name = args.study or default_study_name(ws, spec)
    study = read_study(url, name)
    if study is not None:
        return study, url, None
    if args.study:
        raise NotFoundError(f"no study named '{args.study}' in the search's storage")
    others = read_study_names(url, f"{spec.recipe}.{spec.name}.")
    if not others:
        raise NotFoundError(
            f"search {spec.name} has no study yet; run `mlbuild search {spec.name}`"
        )
    note = (
        f"the current inputs of search {spec.name} have no study yet ({name}); showing the "
        f"newest, {others[0]}: `mlbuild search {spec.name}` starts the current one"
    )
    found = read_study(url, others[0])
    return found, url, note


def _show(args: argparse.Namespace, ws: Any, spec: Any) -> int:
    from mlbuild.search import display_url, study_report, write_plots

    study, url, note = _current_study(args, ws, spec)
    if note:
        print(f"mlbuild: {note}", file=sys.stderr)
    report = study_report(study, spec, top=args.top)
    plots = write_plots(study, spec, Path(args.plots)) if args.plots else []
    if args.json:
        dump_json(
            {**report.to_json(), "storage": display_url(url), "plots": [str(p) for p in plots]}
        )
        return 0
    console = Console()
    _print_best(console, report, spec)
    if report.top:
        keys = [p.key for p in spec.params]
        headers = [
            "TRIAL",
            *(o.metric.upper() for o in spec.objectives),
            *(k.upper() for k in keys),
            "RUN",
        ]
        rows = [
            [
                str(r.number),
                *(format_value(v) for v in r.values or []),
                *(format_value(r.params.get(k, "")) for k in keys),
                (r.run_id or "")[:8],
            ]
            for r in report.top
        ]
        console.print(f"\ntop {len(rows)}:")
        console.print(table(rows, headers))
    for metric, values in report.importances.items():
        shown = ", ".join(f"{k} {v:.2f}" for k, v in values.items())
        console.print(f"\nimportance for {metric}: {shown}")
    for path in plots:
        console.print(f"wrote {path}")
    return 0


def _dashboard(args: argparse.Namespace, ws: Any, spec: Any) -> int:
    from mlbuild.search.dashboard import serve_dashboard

    study, url, note = _current_study(args, ws, spec)
    if note:
        print(f"mlbuild: {note}", file=sys.stderr)
    serve_dashboard(
        url,
        args.host,
        args.port,
        lambda address: print(
            f"optuna-dashboard for study {study.study_name} on {address} (Ctrl-C stops it)",
            flush=True,
        ),
    )
    return 0
