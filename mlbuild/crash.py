"""Crash logs: the traceback of a bug in mlbuild, kept for a bug report, with secrets masked.

A crash log names mlbuild's version, the Python and the platform, the command line and the
traceback. It goes to the workspace's ``.mlbuild/logs/`` (where a user looks, and which git
ignores), and to the temporary directory when there is no workspace or it cannot be written to
(a full disk is a common reason for surprises).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mlbuild.masking import known


def write_crash_log(folder: Path | None, argv: Sequence[str]) -> Path | None:
    """Write the exception being handled to a new ``crash-*.log`` in ``folder``; its path, or
    None if no place would take it."""
    # imported here: only a crash pays for them
    import platform
    import shlex
    import traceback

    from mlbuild import __version__

    secrets = known()
    text = "\n".join(
        [
            f"mlbuild {__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
            f"command: {secrets.text(shlex.join(['mlbuild', *argv]))}",
            f"python: {platform.python_version()} ({sys.executable}) on {platform.platform()}",
            "",
            secrets.text(traceback.format_exc()),
        ]
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for place in ([folder] if folder is not None else []) + [Path(tempfile.gettempdir())]:
        try:
            place.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f"crash-{stamp}-{os.getpid()}-", suffix=".log", dir=place
            )
        except OSError:
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError:
            Path(name).unlink(missing_ok=True)
            continue
        return Path(name)
    return None
