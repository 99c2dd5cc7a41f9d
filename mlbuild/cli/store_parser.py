"""The command line of ``mlbuild runs …`` and ``mlbuild model …`` (the run store's commands)."""

from __future__ import annotations

import argparse

STATUSES = ("running", "finished", "failed", "interrupted")


def add_runs(runs: argparse.ArgumentParser) -> None:
    actions = runs.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="recorded runs, newest first (or by a metric)")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY OP VALUE", help="train.lr=0.01"
    )
    p.add_argument(
        "--metric", action="append", default=[], metavar="KEY OP VALUE", help="accuracy>=0.9"
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY[=VALUE]", help="runs with this tag"
    )
    p.add_argument("--status", action="append", default=[], choices=STATUSES)
    p.add_argument("--commit", metavar="SHA", help="runs of this git commit (a prefix will do)")
    p.add_argument("--kind", metavar="KIND", help="run, reproduce, …")
    p.add_argument(
        "-a",
        "--all",
        action="store_true",
        help="also runs that executed nothing (every step cached), hidden by default",
    )
    p.add_argument(
        "--sort",
        default="started",
        metavar="KEY[:asc|:desc]",
        help="started (default), duration or a metric name; descending unless :asc",
    )
    p.add_argument(
        "-n", "--limit", type=int, default=50, help="at most N runs (default 50; 0 for all)"
    )
    _formats(p, csv=True)

    p = actions.add_parser("show", help="everything recorded about one run")
    p.add_argument("run", metavar="RUN", help="run id (a unique prefix of 4+ digits will do)")
    _formats(p)

    p = actions.add_parser("compare", help="runs side by side, differences marked")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--diff", action="store_true", help="show only the rows that differ")
    _formats(p, csv=True)

    p = actions.add_parser("tag", help="add, change or remove a run's tags, or set its note")
    p.add_argument("run", metavar="RUN")
    p.add_argument("tags", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--remove", action="append", default=[], metavar="KEY")
    p.add_argument("--note", default=None, metavar="TEXT", help="replace the run's note")
    _formats(p)

    p = actions.add_parser("get", help="restore an artifact of a run from the cache")
    p.add_argument("run", metavar="RUN")
    p.add_argument("path", metavar="PATH", help="the artifact's path, or a file inside it")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DEST",
        help="where to write it; an existing directory gets DEST/NAME, like cp",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace DEST (only that file or directory) if it exists",
    )

    p = actions.add_parser("reproduce", help="re-run a run and check outputs and metrics match")
    p.add_argument("run", metavar="RUN")
    p.add_argument(
        "--anyway",
        action="store_true",
        help="re-run even if the commit, recipe, lock or params differ from the record",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        metavar="REL",
        help="relative tolerance for float metrics (default 0: exact)",
    )
    p.add_argument("-j", "--jobs", type=int, default=1, help="steps to run at once (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="keep the steps' output in logs")
    _formats(p)


def add_model(model: argparse.ArgumentParser) -> None:
    actions = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("register", help="a run's artifacts as the model's next version")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--name", required=True, help="the model's name")
    p.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="PATH",
        help="register only these artifacts (default: every cached artifact of the run)",
    )
    p.add_argument("--description", default="", metavar="TEXT")
    _formats(p)

    p = actions.add_parser("list", help="models and their versions and aliases")
    p.add_argument("name", nargs="?", metavar="NAME")
    _formats(p)

    p = actions.add_parser("alias", help="point an alias (staging, production) at a version")
    p.add_argument("name", metavar="NAME")
    p.add_argument("alias", metavar="ALIAS")
    p.add_argument("number", type=int, nargs="?", metavar="VERSION")
    p.add_argument("--remove", action="store_true", help="remove the alias instead")

    p = actions.add_parser("rollback", help="point an alias back where it was before its last move")
    p.add_argument("name", metavar="NAME")
    p.add_argument("alias", metavar="ALIAS")

    p = actions.add_parser("history", help="every move of a model's aliases")
    p.add_argument("name", metavar="NAME")
    _formats(p)


def _formats(p: argparse.ArgumentParser, *, csv: bool = False) -> None:
    if csv:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--json", action="store_true", help="print JSON")
        group.add_argument("--csv", action="store_true", help="print CSV")
    else:
        p.add_argument("--json", action="store_true", help="print JSON")
