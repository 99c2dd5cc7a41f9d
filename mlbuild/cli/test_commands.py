"""``mlbuild test``: run the declared tests, print a table, write JUnit XML; ``--check`` applies
the release gate without running anything."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlbuild.cli.output import Console, JsonReporter, StepReporter, dump_json, summary_line
from mlbuild.cli.shared import parse_assignments
from mlbuild.cli.text import indent, table
from mlbuild.cli.words import one_recipe, split_words
from mlbuild.errors import UsageError


def cmd_test(args: argparse.Namespace) -> int:
    from mlbuild.graph import Workspace

    if args.jobs < 1:
        raise UsageError(f"-j/--jobs must be at least 1, got {args.jobs}")
    tags = parse_assignments(args.tag, "--tag")
    words = split_words(args.args)
    ws = Workspace.find(Path.cwd(), one_recipe(words, args.file))
    try:
        graph = ws.graph(words.overrides)
        if not graph.tests:
            raise UsageError(
                f"{graph.recipe_file} declares no tests; add a tests: section (see the README, "
                "'Model tests')"
            )
        if args.check:
            if words.steps:
                raise UsageError("--check judges every declared test; name no tests with it")
            return _check(ws, graph, as_json=args.json)
        return _run(args, ws, graph, words.steps, tags)
    finally:
        ws.save_state()


def _run(
    args: argparse.Namespace, ws: Any, graph: Any, names: list[str], tags: dict[str, str]
) -> int:
    from mlbuild.cli.sections import GitLabSections, step_reporter
    from mlbuild.exec import run_lock
    from mlbuild.store import recorder_store
    from mlbuild.testing import compile_tests, run_tests

    console = Console()
    reporter: StepReporter | GitLabSections | JsonReporter = (
        JsonReporter() if args.json else step_reporter(console, quiet=args.quiet)
    )
    compile_tests(graph, ws.root, names)  # unknown names fail before anything runs
    try:
        with run_lock(
            ws.meta, wait=args.wait, on_wait=lambda text: print(f"mlbuild: {text}", file=sys.stderr)
        ):
            report = run_tests(
                ws,
                recorder_store(ws.meta, graph.store_url),
                graph,
                names=names,
                force=args.force,
                jobs=args.jobs,
                reporter=reporter,
                tags=tags,
                notes=args.note,
            )
    finally:
        reporter.close()
    not_run = report.not_run
    if args.junit:
        _write_junit(Path(args.junit), ws, graph, report, not_run)
    if args.json:
        dump_json(_json(report, not_run))
    else:
        _print(console, report, not_run)
    return 0 if report.passed else 1


def _write_junit(path: Path, ws: Any, graph: Any, report: Any, not_run: list[Any]) -> None:
    import os

    from mlbuild.testing import junit_xml, write_junit

    properties = {"recipe": graph.recipe_file, "run": report.record.id}
    if report.model:
        properties |= {"model": report.model["name"], "model.version": report.model["version"]}
    recipe = os.path.relpath(ws.recipe_path, Path.cwd())
    data = junit_xml(graph.name, report.results, not_run, properties, recipe)
    try:
        write_junit(path, data)
    except OSError as exc:
        raise UsageError(f"--junit {path}: cannot write it: {exc.strerror or exc}") from None


def _print(console: Console, report: Any, not_run: list[Any]) -> None:
    from mlbuild.testing.steps import TEST_PREFIX

    rows = []
    for r in report.results:
        result = r.status + (" (cached)" if r.cached else "")
        rows.append([r.test.name, r.test.kind, result, f"{r.duration:.2f}s", _cut(r.message)])
    rows += [[n.test.name, n.test.kind, "not run", "", _cut(n.reason)] for n in not_run]
    console.print(table(rows, ["TEST", "KIND", "RESULT", "TIME", "SUMMARY"]))
    for r in report.results:
        if r.status == "passed":
            continue
        details = r.verdict.details if r.verdict is not None else r.error.splitlines()[1:]
        console.print(f"{r.test.name}: {r.message.splitlines()[0] if r.message else r.status}")
        if details:
            console.print(indent("\n".join(details)))
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    if not_run:
        counts["not run"] = len(not_run)
    cached = sum(1 for r in report.results if r.cached)
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    model = (
        f" for model '{report.model['name']}' version {report.model['version']}"
        if report.model
        else ""
    )
    from_cache = f" ({cached} from the cache)" if report.results else ""
    # the tests are counted above; the run's summary line then says what the steps did
    steps = replace(
        report.summary,
        outcomes=[o for o in report.summary.outcomes if not o.name.startswith(TEST_PREFIX)],
    )
    console.print(
        f"{parts}{from_cache}{model}; {summary_line(steps)}; recorded as run {report.record.id[:8]}"
    )


def _json(report: Any, not_run: list[Any]) -> dict[str, Any]:
    from mlbuild.testing.steps import TEST_PREFIX

    return {
        "ok": report.passed,
        "run_id": report.record.id,
        "model": report.model,
        "tests": [
            {
                "name": r.test.name,
                "kind": r.test.kind,
                "status": r.status,
                "cached": r.cached,
                "duration": round(r.duration, 4),
                "fingerprint": r.fingerprint,
                "reasons": r.reasons,
                "summary": r.message,
                "details": r.verdict.details if r.verdict is not None else [],
                "measured": r.verdict.measured if r.verdict is not None else {},
            }
            for r in report.results
        ]
        + [
            {"name": n.test.name, "kind": n.test.kind, "status": "not run", "summary": n.reason}
            for n in not_run
        ],
        "steps": [
            {"name": o.name, "status": o.status.value, "message": o.message}
            for o in report.summary.outcomes
            if not o.name.startswith(TEST_PREFIX)
        ],
    }


def _check(ws: Any, graph: Any, *, as_json: bool) -> int:
    from mlbuild.testing import check_tests

    gate = check_tests(ws, graph, action="release")
    if as_json:
        dump_json(
            {
                "ok": gate.ok,
                "model": gate.model,
                "version": gate.version,
                "passed": gate.passed,
                "failed": gate.failed,
                "not_run": gate.not_run,
            }
        )
        return 0 if gate.ok else 1
    if not gate.ok:
        print(
            f"mlbuild: the tests of {gate.subject} did not pass"
            f"{' for this exact model' if gate.model else ''} ({gate.findings()}); run "
            "`mlbuild test`",
            file=sys.stderr,
        )
        return 1
    count = len(gate.passed)
    every = f"all {count} tests" if count != 1 else "1 test"
    print(f"{every} passed for {gate.subject}")
    return 0


def _cut(text: str, width: int = 90) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."
