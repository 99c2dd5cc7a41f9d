"""The error family of mlbuild.

Every failure a user can cause or fix is an :class:`MlbuildError` with a message that says what
failed, where, and what to do. The one handler in :mod:`mlbuild.cli.main` turns them into exit
codes; anything else is an internal error and gets a traceback in a log file.
"""

from __future__ import annotations

from typing import NamedTuple

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: nothing was wrong, try again later
EXIT_INTERRUPTED = 130


class MlbuildError(Exception):
    """Root of every error a user sees as a message rather than a traceback."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(MlbuildError):
    """The command line is wrong: an unknown step, a malformed override, a bad flag value."""

    exit_code = EXIT_USAGE


class Problem(NamedTuple):
    """One thing wrong in a recipe, located as precisely as the source allows."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    source_line: str | None = None

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.source_line is None or self.line is None:
            return head
        gutter = f"{self.line:>5} | "
        shown, at = _excerpt(self.source_line, max((self.column or 1) - 1, 0))
        caret = " " * (len(gutter) - 2) + "| " + " " * at + "^"
        return f"{head}\n{gutter}{shown}\n{caret}"


_EXCERPT = 100  # characters of a source line shown around the column: a minified recipe's one
# line can be megabytes, and the error is read on a terminal


def _excerpt(line: str, at: int) -> tuple[str, int]:
    """At most about :data:`_EXCERPT` characters of ``line`` around offset ``at``, with "…"
    where it was cut, and where ``at`` falls in what is shown."""
    if len(line) <= _EXCERPT:
        return line, at
    start = max(0, min(at - _EXCERPT // 2, len(line) - _EXCERPT))
    end = start + _EXCERPT
    shown = line[start:end]
    if start:
        shown, at = "…" + shown, at - start + 1
    if end < len(line):
        shown += "…"
    return shown, at


class RecipeError(MlbuildError):
    """The recipe is wrong. Carries every problem found, not only the first."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in {problems[0].file}"
        super().__init__("\n".join([*(p.render() for p in problems), summary]))


class OverrideError(UsageError):
    """A parameter override on the command line cannot be applied."""


class CacheError(MlbuildError):
    """The cache is unusable: unreadable, corrupt, or missing an object it claims to hold."""


class PlantedError(MlbuildError):
    """Something mlbuild did not make stands at a path of its own state (``.mlbuild/…``): a
    symlink, maybe out of the workspace; a file; a FIFO. Named; nothing is written, read or
    removed through it."""


class DiskFullError(MlbuildError):
    """A write ran out of space (or quota); the message names the file and the bytes it needed."""


class StepFailedError(MlbuildError):
    """One or more steps failed; the message names them and their logs."""


class LockedError(MlbuildError):
    """Another mlbuild process holds the repository's run lock (or the cache's).

    Its own exit code, so a CI script can tell "busy, retry" from "a step failed"."""

    exit_code = EXIT_BUSY


class InterruptError(MlbuildError):
    """The user pressed Ctrl-C (or the process got SIGTERM); children were stopped.

    ``abandoned``: a thread of this process is stuck where no signal reaches it (a read from a
    remote that stopped answering); the process must exit without waiting for it."""

    exit_code = EXIT_INTERRUPTED
    abandoned = False


class StoreError(MlbuildError):
    """The run store cannot be opened, read or written (unreachable server, newer schema)."""


class NotFoundError(UsageError):
    """A run, model, version or alias named on the command line is not in the run store."""


class ReproduceError(MlbuildError):
    """A reproduced run's outputs or metrics differ from the recorded ones."""
