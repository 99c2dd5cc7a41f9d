"""The ``mlbuild`` command: dispatch, and the one place exit codes are decided (the grammar is
:mod:`mlbuild.cli.parser`).

Only argparse and the error classes are imported at start-up; each command imports what it needs,
so ``mlbuild --help`` never loads pydantic, Hydra or any heavy library.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from mlbuild.cli.parser import build_parser
from mlbuild.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    InterruptError,
    MlbuildError,
    UsageError,
)

EXIT_INTERNAL = 3


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stop:
    """What a stop signal does now: with ``code`` None, while the command works, it raises
    KeyboardInterrupt (the children are stopped, exit 130); once an exit code is decided or a
    stop is under way, it exits with ``code`` at once."""

    code: int | None = None


def main(argv: Sequence[str] | None = None) -> int:
    """The command line ``argv`` (the process's own when ``None``); the exit code.

    Called for the process (``argv`` None), stop signals are mlbuild's until the process ends
    (see :func:`_sigterm`); called in-process, the caller's handlers are put back on return."""
    _Stop.code = None
    previous = {sig: signal.signal(sig, _sigterm) for sig in _STOP_SIGNALS}
    if argv is not None:
        try:
            return _main(list(argv))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    atexit.register(_deaf_at_exit)  # before any library's hook, so it runs after them all
    code = _main(sys.argv[1:])
    _Stop.code = code  # a stop signal from now on ends the process with the code decided
    return code


def _main(args_list: list[str]) -> int:
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
        if isinstance(exc, InterruptError) and exc.abandoned:
            _exit_now(exc.exit_code)
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


def _exit_now(code: int) -> None:
    """Exit with ``code`` at once, output flushed: an interrupted run left a thread stuck where
    no signal reaches it, and the interpreter's exit would wait for that thread for ever."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


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
    children and exit cleanly.

    Only the first one raises. A second one while the first is handled (printing "interrupted")
    used to escape as a traceback and exit -2; one as the command returns, while the interpreter
    joins threads or runs exit hooks, printed "Exception ignored"; one after that killed the
    process with -15, the interpreter having put the default handlers back. Now a stop signal
    after the first, or after the exit code is decided, exits at once with that code (130 while
    stopping): output flushed, nothing further run."""
    if _Stop.code is not None:
        _exit_now(_Stop.code)
    _Stop.code = EXIT_INTERRUPTED
    raise KeyboardInterrupt


def _deaf_at_exit() -> None:
    """Ignore stop signals for the interpreter's last steps: it restores the default handlers
    after the exit hooks, and a SIGTERM then would kill a process whose exit code is decided."""
    for sig in _STOP_SIGNALS:
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
