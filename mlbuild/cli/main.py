"""The ``mlbuild`` command: argument parsing, dispatch, and the one place exit codes are decided.

Only argparse and the error classes are imported at start-up; each command imports what it needs,
so ``mlbuild --help`` never loads pydantic, Hydra or any heavy library.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from mlbuild.cli.shared import add_record_options
from mlbuild.errors import EXIT_INTERRUPTED, EXIT_USAGE, MlbuildError, UsageError

EXIT_INTERNAL = 3


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


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("init", help="write a starter ml.yaml for this repository")
    p.add_argument("--name", help="project name (default: the directory's name)")
    p.add_argument("--force", action="store_true", help="overwrite an existing ml.yaml")

    p = sub.add_parser("validate", help="check ml.yaml and report every problem")
    p.add_argument(
        "args",
        nargs="*",
        metavar="FILE|OVERRIDE",
        help="recipes to check (words ending in .yaml or .yml; default: the nearest ml.yaml) "
        "and Hydra overrides to check them with",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    for name, text in (
        ("plan", "show what `run` would do for each step, and why"),
        ("run", "run the steps that are not up to date"),
    ):
        p = sub.add_parser(name, help=text)
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
            p.add_argument(
                "--read-only",
                "--no-push",
                dest="read_only",
                action="store_true",
                help="restore from the remote cache but upload nothing, for untrusted merge "
                "requests (also MLBUILD_REMOTE_READ_ONLY=1)",
            )
            p.add_argument(
                "-n", "--dry-run", action="store_true", help="print the plan, run nothing"
            )
            add_record_options(p)

    p = sub.add_parser("status", help="which steps are up to date, and when they last ran")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    p.add_argument("--json", action="store_true")

    _add_serving_commands(sub)

    p = sub.add_parser("schema", help="print, write or check the JSON Schema of ml.yaml")
    p.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of stdout")
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless each FILE (default: ml.schema.json) holds exactly this schema",
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="schema files to --check")

    _add_data_commands(sub)
    _add_cache_commands(sub)
    _add_search_commands(sub)
    from mlbuild.cli.package_parser import add_package_commands
    from mlbuild.cli.review_parser import add_review_commands
    from mlbuild.cli.store_parser import add_store_commands
    from mlbuild.cli.test_parser import add_test_command

    add_test_command(sub)
    add_store_commands(sub, _Parser)
    add_review_commands(sub, _Parser)
    add_package_commands(sub, _Parser)
    return parser


def _add_serving_commands(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve the recipe's model over HTTP (Open Inference Protocol v2, MLflow, metrics)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="BUNDLE|OVERRIDE",
        help="Hydra overrides, or a bundle (a directory or .tar.gz `mlbuild package` wrote) to "
        "serve with no repository",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "--workers", type=int, default=1, metavar="N", help="server processes (default: 1)"
    )
    p.add_argument(
        "--max-body-size",
        type=_size,
        default=8 * 1024 * 1024,
        metavar="BYTES",
        help="largest request body accepted, e.g. 65536, 512k, 8M (default: 8M)",
    )
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token-env",
        metavar="VAR",
        help="require `Authorization: Bearer TOKEN`, TOKEN being this environment variable's value",
    )
    auth.add_argument(
        "--token-file", metavar="FILE", help="require a bearer token, read from this secret file"
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--threads",
        type=_count(1, 1024),
        default=1,
        metavar="N",
        help="threads per worker that run predict(); above 1 the model's predict() must be "
        "thread-safe (default: 1)",
    )
    p.add_argument(
        "--queue",
        type=_count(0, 100_000),
        default=64,
        metavar="N",
        help="prediction requests that may wait for a thread; more get 503 (default: 64)",
    )
    p.add_argument(
        "--header-timeout",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="time a client has to send a request's headers (default: 10)",
    )
    p.add_argument(
        "--body-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="time a client has to send a request's body (default: 30)",
    )

    p = sub.add_parser(
        "predict", help="score a CSV or JSON Lines file with the recipe's model, in-process"
    )
    p.add_argument(
        "input", metavar="FILE", help="rows to score (.csv with a header row, or .jsonl)"
    )
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides")
    p.add_argument(
        "-o", "--output", metavar="OUT", help="write the predictions here (default: stdout)"
    )


def _add_data_commands(sub: Any) -> None:
    p = sub.add_parser("data", help="datasets: versions and changes since the last run")
    data = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", parser_class=_Parser)
    d = data.add_parser("status", help="which datasets differ from the last run, and which files")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler="mlbuild.cli.data:cmd_data_status")

    p = sub.add_parser(
        "push", help="upload DVC-tracked data and `dvc: true` outputs to DVC remotes"
    )
    p.add_argument("--remote", help="DVC remote (default: the dataset's, else DVC's default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler="mlbuild.cli.data:cmd_push")


def _add_cache_commands(sub: Any) -> None:
    p = sub.add_parser(
        "cache",
        help="the remote cache: push results to it, pull them from it, see where they are",
        description="The remote cache that CI and laptops share (`cache: {remote: URL}` in "
        "ml.yaml, or MLBUILD_REMOTE_CACHE). `run` uses it on its own; these commands move the "
        "steps' results for their current inputs by hand.",
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

    p = sub.add_parser("gc", help="remove cached results the workspace no longer uses")
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


def _add_search_commands(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="hyperparameter search with Optuna: run a search, show it, open its dashboard",
        description="mlbuild search NAME [OVERRIDE...]: run the recipe's search NAME (each trial a "
        "cached, recorded run of its step). mlbuild search show NAME: the best trial, the top "
        "trials and the parameters' importances. mlbuild search dashboard NAME: optuna-dashboard "
        "on the study.",
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="NAME|show NAME|dashboard NAME",
        help="the search, then Hydra overrides for every trial",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_count(1, 256),
        default=1,
        metavar="N",
        help="worker processes on this machine, each in its own copy of the workspace (default 1)",
    )
    p.add_argument(
        "--worker",
        action="store_true",
        help="run one worker that joins the study (start it on several machines that share a "
        "PostgreSQL storage); prints no summary",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--top", type=_count(1, 100_000), default=10, metavar="K", help="show: trials listed (10)"
    )
    p.add_argument(
        "--study", metavar="NAME", help="show, dashboard: this study instead of the current one"
    )
    p.add_argument(
        "--plots",
        metavar="DIR",
        help="show: also write Optuna's plots as HTML files into DIR",
    )
    p.add_argument("--host", default="127.0.0.1", help="dashboard: address (127.0.0.1)")
    p.add_argument(
        "--port", type=_count(0, 65535), default=8080, help="dashboard: port (default 8080)"
    )
    p.set_defaults(handler="mlbuild.cli.search_commands:cmd_search")


def _days(text: str) -> float:
    """``--keep-days N``: a finite number of days, 0 or more."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise argparse.ArgumentTypeError(f"expected a number of days, 0 or more, got {text!r}")
    return days


def _size(text: str) -> int:
    """``65536``, ``512k``, ``8M`` → bytes."""
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    raw = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(raw[-1:], 1)
    number = raw[:-1] if raw[-1:] in units else raw
    if not number.isdigit() or int(number) <= 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 65536, 512k or 8M, got {text!r}")
    return int(number) * factor


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {text!r}"
            )
        return int(text)

    return parse


def _seconds(text: str) -> float:
    """``10``, ``0.5`` → seconds, more than 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 3600:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0 and at most 3600, got {text!r}"
        )
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    recipe: str | None = None
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        recipe = args.file
        if args.version:
            from mlbuild import __version__

            print(f"mlbuild {__version__}")
            return 0
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.directory:
            try:
                os.chdir(args.directory)
            except OSError as exc:
                raise UsageError(f"-C {args.directory}: {exc.strerror}") from None
        code: int = _handler(args)(args)
        return code
    except MlbuildError as exc:
        _error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if _caused_by_interrupt(exc):
            return _interrupted()
        from mlbuild.crash import write_crash_log

        log = write_crash_log(_logs_folder(recipe), args_list)
        where = f"the traceback is in {log}" if log else "no crash log could be written"
        _error(f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in mlbuild; {where}")
        return EXIT_INTERNAL


def _interrupted() -> int:
    """Say so and answer exit code 130 — and make sure the interpreter exits with it."""
    _error("interrupted")
    _forget_unhandled_interrupt()
    return EXIT_INTERRUPTED


def _forget_unhandled_interrupt() -> None:
    """Clear CPython's note that a KeyboardInterrupt escaped code run from a string.

    Code compiled from text (``exec``, as dataclasses and namedtuples make their methods) that a
    KeyboardInterrupt leaves — SIGTERM arriving during an import — sets a process-wide flag that
    is not cleared when the interrupt is caught; at exit the interpreter then kills itself with
    SIGINT instead of exiting with our 130. Running any string clears it.
    """
    exec("pass")  # noqa: S102 -- a constant string; running it resets the flag


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` wraps a KeyboardInterrupt (``__set_name__`` errors wrap the SIGTERM that
    arrived while a class was made in a RuntimeError)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _error(text: str) -> None:
    """Print ``mlbuild: text`` on stderr, secrets masked, control characters shown as escapes
    (a name from the command line or a step's output could clear the terminal or forge a
    line); a closed terminal is no new error."""
    from mlbuild.cli.text import printable
    from mlbuild.masking import known

    shown = "\n".join(printable(line) for line in known().text(text).split("\n"))
    with contextlib.suppress(OSError):
        print(f"mlbuild: {shown}", file=sys.stderr)


def _logs_folder(recipe: str | None) -> Path | None:
    """The workspace's ``.mlbuild/logs`` for a crash log (None outside a workspace)."""
    from mlbuild.paths import META_DIR
    from mlbuild.recipe import RECIPE_FILE

    try:
        start = Path.cwd()
        found = Path(recipe).absolute() if recipe is not None else None
        if found is None:
            found = next(
                (f / RECIPE_FILE for f in [start, *start.parents] if (f / RECIPE_FILE).is_file()),
                None,
            )
    except OSError:
        return None
    return found.parent / META_DIR / "logs" if found is not None else None


def _handler(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    """The function for the chosen command: ``handler="module:function"`` set by its subparser,
    else ``cmd_COMMAND`` in :mod:`mlbuild.cli.commands`. Imported only now, to start fast."""
    ref = getattr(args, "handler", None)
    if ref is None and args.command == "data":
        raise UsageError("mlbuild data needs a subcommand: status")
    if ref is None and args.command in ("runs", "model"):
        ref = f"mlbuild.cli.{args.command}_commands:cmd_{args.command}_{args.action}"
    module, _, name = (ref or f"mlbuild.cli.commands:cmd_{args.command}").partition(":")
    found: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
    return found


def _sigterm(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM (a CI job cancelled) and SIGHUP (the terminal closed) like Ctrl-C: stop the
    children and exit cleanly."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
