"""The command line's grammar: ``mlbuild``'s options, its commands, and each command's arguments.

Only the chosen command's arguments are built (issue 15: building all 21 commands' parsers was a
fixed share of every ``plan`` and no-op ``run``). The table :data:`COMMANDS` names every command
with its one-line help, so ``mlbuild --help`` and the message for an unknown command list them
all; ``mlbuild CMD …`` builds ``CMD``'s parser when argparse reaches ``CMD``, with the builder the
table names.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from mlbuild.errors import UsageError

Builder = Callable[[argparse.ArgumentParser], None]


class _Parser(argparse.ArgumentParser):
    """Errors as :class:`UsageError`; a command's flags may come anywhere among its words.

    argparse fills a ``nargs="*"`` positional from one run of words only, so in
    ``mlbuild run A --multirun B`` it took ``A`` and rejected ``B``. A command without
    subcommands therefore parses intermixed: flags first, then every remaining word in order.
    """

    _intermixing = False

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\nrun `{self.prog} --help` for usage")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        has_commands = any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if self._intermixing or has_commands:
            return super().parse_known_args(args, namespace)
        # parse_known_intermixed_args calls parse_known_args twice itself: plain parsing then
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """``mlbuild``'s commands: every name and one-line help known up front, each command's parser
    built only when argparse reaches that command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._builders: dict[str, Builder | str] = {}
        # argparse reads `choices` to accept a command or list them all in its error message;
        # the parsers themselves are made in __call__
        self.choices = self._builders

    def add_command(self, name: str, text: str, build: Builder | str) -> None:
        """``name`` with its ``text`` for the listing; ``build`` fills its parser (a function, or
        ``"module:function"`` imported only when the command is chosen)."""
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), text))
        self._builders[name] = build

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name = values[0]
        if name not in self._name_parser_map:
            command = self._parser_class(prog=f"{self._prog_prefix} {name}")
            build = self._builders[name]
            if isinstance(build, str):
                module, _, function = build.partition(":")
                build = getattr(importlib.import_module(module), function)
            build(command)
            self._name_parser_map[name] = command
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    """``mlbuild``'s parser: its own options and the table of commands (none of them built)."""
    parser = _Parser(
        prog="mlbuild",
        description="Turn ml.yaml into reproducible, cached ML steps.",
        epilog="Exit codes: 0 ok, 1 a step failed, 2 bad recipe or command line, 3 internal "
        "error, 130 interrupted.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-C", dest="directory", metavar="DIR", help="run as if started in DIR")
    parser.add_argument(
        "-f", "--file", metavar="FILE", help="the recipe (default: ./ml.yaml or the nearest above)"
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, action=_Commands
    )
    assert isinstance(commands, _Commands)
    for name, (text, build) in COMMANDS.items():
        commands.add_command(name, text, build)
    return parser


def _add_init(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="project name (default: the directory's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing ml.yaml")


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "args",
        nargs="*",
        metavar="FILE|OVERRIDE",
        help="recipes to check (words ending in .yaml or .yml; default: the nearest ml.yaml) "
        "and Hydra overrides to check them with",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_plan(p: argparse.ArgumentParser) -> None:
    _add_plan_or_run(p, "plan")


def _add_run(p: argparse.ArgumentParser) -> None:
    _add_plan_or_run(p, "run")


def _add_plan_or_run(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument(
        "args",
        nargs="*",
        metavar="STEP|OVERRIDE",
        help="steps to bring up to date (and what they depend on), Hydra overrides "
        "such as train.lr=0.01, +extra=1, ~drop, and optionally the recipe (a word ending "
        "in .yaml or .yml, like -f)",
    )
    p.add_argument("--force", action="store_true", help="run the selected steps even if cached")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument(
        "-m",
        "--multirun",
        action="store_true",
        help="run every combination of sweep overrides (train.lr=0.1,0.01)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="steps to run at once (default: the number of CPUs)"
        + ("" if name == "run" else "; accepted so that `plan` takes `run`'s words"),
    )
    p.add_argument(
        "--isolated",
        action="store_true",
        help="run the steps in the environment built from the lock (`mlbuild env build`), "
        "not the caller's interpreter",
    )
    p.add_argument(
        "--allow-failing-tests",
        action="store_true",
        help="let the package steps build a model whose declared tests failed or did not "
        "run for it (recorded in the image's labels)",
    )
    p.add_argument(
        "--executor",
        metavar="NAME",
        help="run every command step on this executor: local, clean or container "
        "(default: each step's `executor:`, else local)",
    )
    p.add_argument(
        "-k",
        "--keep-going",
        action="store_true",
        help="after a step fails, still run every step that does not depend on it, and "
        "report all failures at the end (default: start no new step after a failure)"
        + ("" if name == "run" else "; accepted so that `plan` takes `run`'s words"),
    )
    p.add_argument(
        "--no-remote",
        action="store_true",
        help="use no remote cache, even if ml.yaml or MLBUILD_REMOTE_CACHE names one",
    )
    if name == "run":
        from mlbuild.cli.shared import add_record_options

        p.add_argument(
            "--read-only",
            "--no-push",
            dest="read_only",
            action="store_true",
            help="restore from the remote cache but upload nothing, for untrusted merge "
            "requests (also MLBUILD_REMOTE_READ_ONLY=1)",
        )
        p.add_argument("-n", "--dry-run", action="store_true", help="print the plan, run nothing")
        add_record_options(p)


def _add_status(p: argparse.ArgumentParser) -> None:
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    p.add_argument("--json", action="store_true")


def _add_schema(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of stdout")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless each FILE (default: ml.schema.json) holds exactly this schema",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="schema files to --check")


def _add_data(p: argparse.ArgumentParser) -> None:
    data = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=_Parser)
    d = data.add_parser("status", help="which datasets differ from the last run, and which files")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler="mlbuild.cli.data:cmd_data_status")


def _add_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("--remote", help="DVC remote (default: the dataset's, else DVC's default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler="mlbuild.cli.data:cmd_push")


def _add_cache(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The remote cache that CI and laptops share (`cache: {remote: URL}` in "
        "ml.yaml, or MLBUILD_REMOTE_CACHE). `run` uses it on its own; these commands move the "
        "steps' results for their current inputs by hand."
    )
    actions = p.add_subparsers(
        dest="cache_command", metavar="SUBCOMMAND", parser_class=_Parser, required=True
    )
    for name, text in (
        ("push", "upload the steps' results from the local cache (objects, then entries)"),
        ("pull", "download the steps' results into the local cache, every object verified"),
        ("status", "for each step: is its result in the local cache, the remote one, both?"),
    ):
        c = actions.add_parser(name, help=text, description=text)
        c.add_argument(
            "args",
            nargs="*",
            metavar="STEP|OVERRIDE",
            help="steps (and what they depend on; default: all), Hydra overrides, the recipe",
        )
        c.add_argument("--json", action="store_true", help="print the result as JSON")
        c.set_defaults(handler=f"mlbuild.cli.cache_commands:cmd_cache_{name}")


def _add_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keep-days",
        type=_days,
        default=None,
        metavar="N",
        help="also keep results used in the last N days",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="report what would be removed")
    p.add_argument(
        "--wait", action="store_true", help="queue behind a run in this workspace or the cache"
    )
    p.add_argument("--json", action="store_true")


def _days(text: str) -> float:
    """``--keep-days N``: a finite number of days, 0 or more."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {text!r}")
    return days


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argument ``type``: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {text!r}"
            )
        return int(text)

    return parse


_PACKAGE = "mlbuild.cli.package_parser"
_SERVE = "mlbuild.cli.serve_parser"
_REVIEW = "mlbuild.cli.review_parser"
_STORE = "mlbuild.cli.store_parser"

# Every command, in the order `mlbuild --help` lists them: its one-line help, and what builds its
# arguments (a function here, or "module:function" in the parser module of its concern).
COMMANDS: dict[str, tuple[str, Builder | str]] = {
    "init": ("write a starter ml.yaml for this repository", _add_init),
    "validate": ("check ml.yaml and report every problem", _add_validate),
    "plan": ("show what `run` would do for each step, and why", _add_plan),
    "run": ("run the steps that are not up to date", _add_run),
    "status": ("which steps are up to date, and when they last ran", _add_status),
    "serve": (
        "serve the recipe's model over HTTP (Open Inference Protocol v2, MLflow, metrics)",
        f"{_SERVE}:add_serve",
    ),
    "predict": (
        "score a CSV or JSON Lines file with the recipe's model, in-process",
        f"{_SERVE}:add_predict",
    ),
    "schema": ("print, write or check the JSON Schema of ml.yaml", _add_schema),
    "data": ("datasets: versions and changes since the last run", _add_data),
    "push": ("upload DVC-tracked data and `dvc: true` outputs to DVC remotes", _add_push),
    "cache": (
        "the remote cache: push results to it, pull them from it, see where they are",
        _add_cache,
    ),
    "gc": ("remove cached results the workspace no longer uses", _add_gc),
    "search": (
        "hyperparameter search with Optuna: run a search, show it, open its dashboard",
        "mlbuild.cli.search_parser:add_search",
    ),
    "test": (
        "run the model's declared tests (cached: a test re-runs only when the model or the "
        "test changed); JUnit XML for CI",
        "mlbuild.cli.test_parser:add_test",
    ),
    "runs": ("list, show, compare, tag, fetch from and reproduce runs", f"{_STORE}:add_runs"),
    "model": ("register model versions, move aliases, roll back", f"{_STORE}:add_model"),
    "diff": (
        "what changed between two revisions (or recipe files), and which steps re-run",
        f"{_REVIEW}:add_diff",
    ),
    "ci": ("CI pipelines for this repository (GitLab)", f"{_REVIEW}:add_ci"),
    "env": ("the environment: lock it, check it, build it", f"{_PACKAGE}:add_env"),
    "package": (
        "build the package: section's targets (bundle, Docker image)",
        f"{_PACKAGE}:add_package",
    ),
    "publish": (
        "build the image of a registered model version, smoke-test it and push it, tagged "
        "with the version (never overwriting a tag)",
        f"{_PACKAGE}:add_publish",
    ),
}
