"""``mlbuild diff`` and ``mlbuild ci``: parse nothing, call the library, write, return the code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlbuild import atomic
from mlbuild.cli.commands import _workspace
from mlbuild.cli.words import is_override
from mlbuild.errors import UsageError


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from mlbuild.cli.diff_output import render_markdown, render_text
    from mlbuild.review import diff_report

    ws = _workspace(args)
    names = [word for word in args.args if not is_override(word)]
    overrides = [word for word in args.args if is_override(word)]
    try:
        report = diff_report(ws, names, overrides)
    finally:
        ws.save_state()
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(report.to_json(), indent=2, sort_keys=True, default=str) + "\n"
    elif fmt == "markdown":
        text = render_markdown(report)
    else:
        text = render_text(report) + "\n"
    _emit(text, args.output)
    return 0


def cmd_ci(args: argparse.Namespace) -> int:
    raise UsageError("mlbuild ci needs a subcommand: gitlab, metrics")


def cmd_ci_gitlab(args: argparse.Namespace) -> int:
    from mlbuild.ci import check_pipeline, gitlab_pipeline, gitlab_template

    ws = _workspace(args)
    if args.template:
        _emit(gitlab_template(), args.template)
        return 0
    try:
        pipeline = gitlab_pipeline(ws)
    finally:
        ws.save_state()
    if args.stdout:
        sys.stdout.write(pipeline.text)
        return 0
    if args.check:
        difference = check_pipeline(pipeline)
        if difference:
            sys.stdout.write(difference)
            print(
                f"mlbuild: {pipeline.display} is not what `mlbuild ci gitlab` writes for this "
                "recipe; run `mlbuild ci gitlab` and commit the result",
                file=sys.stderr,
            )
            return 1
        print(f"{pipeline.display} is current")
        return 0
    pipeline.check_replaceable(force=args.force)
    _emit(pipeline.text, str(pipeline.path))
    print(f"wrote {pipeline.display} ({', '.join(pipeline.jobs)}); commit it", file=sys.stderr)
    return 0


def cmd_ci_metrics(args: argparse.Namespace) -> int:
    from mlbuild.ci import openmetrics_of_last_run
    from mlbuild.store import open_workspace_store

    ws = _workspace(args)
    store = open_workspace_store(ws.meta, ws.graph([]).store_url)
    try:
        text = openmetrics_of_last_run(store)
    finally:
        store.close()
    _emit(text, args.output)
    return 0


def _emit(text: str, output: str | None) -> None:
    """``text`` on stdout, or in file ``output`` replaced whole (a reader never sees half)."""
    if output is None:
        sys.stdout.write(text)
        return
    target = Path(output)
    if target.is_dir():
        raise UsageError(f"{output} is a directory; name a file")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{output}: no directory {folder}")
    atomic.write_text(target, text)
