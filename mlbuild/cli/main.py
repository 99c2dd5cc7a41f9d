"""The ``mlbuild`` command: argument parsing, dispatch, and the one place exit codes are decided.

Only argparse and the error classes are imported at start-up; each command imports what it needs,
so ``mlbuild --help`` never loads pydantic, Hydra or any heavy library.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mlbuild.errors import EXIT_INTERRUPTED, EXIT_USAGE, MlbuildError, UsageError

EXIT_INTERNAL = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}\nrun `{self.prog} --help` for usage")


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
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides to check too")
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
            help="steps to bring up to date (and what they depend on), and Hydra overrides "
            "such as train.lr=0.01, +extra=1, ~drop",
        )
        p.add_argument("--force", action="store_true", help="run the selected steps even if cached")
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        p.add_argument(
            "-m",
            "--multirun",
            action="store_true",
            help="run every combination of sweep overrides (train.lr=0.1,0.01)",
        )
        if name == "run":
            p.add_argument(
                "-n", "--dry-run", action="store_true", help="print the plan, run nothing"
            )
            p.add_argument(
                "-j",
                "--jobs",
                type=int,
                default=os.cpu_count() or 1,
                help="steps to run at once (default: the number of CPUs)",
            )
            p.add_argument(
                "-q",
                "--quiet",
                action="store_true",
                help="keep the steps' output in their logs only",
            )
            p.add_argument(
                "--wait",
                action="store_true",
                help="if another run holds the workspace, wait for it instead of failing",
            )
            p.add_argument(
                "--tag",
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="tag the run's record (repeatable)",
            )
            p.add_argument("--note", default="", metavar="TEXT", help="a note on the run's record")

    p = sub.add_parser("status", help="which steps are up to date, and when they last ran")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE")
    p.add_argument("--json", action="store_true")

    sub.add_parser("schema", help="print the JSON Schema of ml.yaml")

    p = sub.add_parser("gc", help="remove cached results the workspace no longer uses")
    p.add_argument(
        "--keep-days",
        type=float,
        default=None,
        metavar="N",
        help="also keep results used in the last N days",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="report what would be removed")
    p.add_argument("--json", action="store_true")

    from mlbuild.cli.store_parser import add_store_commands

    add_store_commands(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
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
        if args.command in ("runs", "model"):
            import importlib

            module = importlib.import_module(f"mlbuild.cli.{args.command}_commands")
            handler = getattr(module, f"cmd_{args.command}_{args.action}")
        else:
            from mlbuild.cli import commands

            handler = getattr(commands, f"cmd_{args.command}")
        code: int = handler(args)
        return code
    except MlbuildError as exc:
        print(f"mlbuild: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlbuild: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:
        log = Path(tempfile.gettempdir()) / f"mlbuild-crash-{int(time.time())}-{os.getpid()}.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        print(
            f"mlbuild: internal error: {type(exc).__name__}: {exc}\n"
            f"This is a bug in mlbuild; the traceback is in {log}",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _sigterm(signum: int, frame: FrameType | None) -> None:
    """Treat SIGTERM (a CI job cancelled) like Ctrl-C: stop the children and exit cleanly."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
