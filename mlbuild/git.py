"""Ask git through its command line: argument lists (never a shell string), no optional locks.

A directory outside any repository, a failing command or a missing ``git`` answer ``None``: the
callers treat "no git information" as a normal case, not an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # never take the index lock from a user


def git(root: Path, *args: str) -> bytes | None:
    """The stdout of ``git ARGS`` run in ``root``, or ``None`` if git fails or is missing."""
    found = shutil.which("git")
    if found is None:
        return None
    try:
        done = subprocess.run(
            [found, *args],
            cwd=root,
            env={**os.environ, **_GIT_ENV},
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def tracked_and_clean(root: Path, path: str) -> bool:
    """Git tracks ``path`` (a file, or every file of a directory) and nothing in it differs from
    the index and ``HEAD``: no modified, untracked or ignored file. Then git can restore it."""
    listed = git(root, "--literal-pathspecs", "ls-files", "-z", "--", path)
    if not listed:
        return False
    status = git(
        root,
        "--literal-pathspecs",
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--ignored=matching",
        "--",
        path,
    )
    return status == b""
