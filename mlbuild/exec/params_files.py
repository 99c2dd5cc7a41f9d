"""Write a run's overrides into the params files that hold their keys, before any step runs.

A step that reads the file itself then sees exactly the values its fingerprint holds (the file is
one of its deps). The edit stays, as ``dvc exp run -S`` leaves it: the workspace says which values
its outputs were made with, ``git diff`` shows the change, and a later run without the override
finds the same results cached. All files are written aside first: all change, or none.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlbuild.errors import MlbuildError
from mlbuild.graph import Graph


def write_params_files(root: Path, graph: Graph, note: Callable[[str, str], None]) -> None:
    """Write ``graph.param_writes`` into workspace ``root``; ``note(path, text)`` says so."""
    resolved_root = root.resolve()
    staged: list[tuple[str, Path, str]] = []
    path = ""
    try:
        for path, text in graph.param_writes.items():
            target = (root / path).resolve()
            target.relative_to(resolved_root)  # checked when compiling; a symlink changed since
            data = text.encode("utf-8")
            if target.read_bytes() != data:
                staged.append((path, target, _stage(target, data)))
    except (OSError, ValueError) as exc:
        for _, _, tmp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        why = exc.strerror if isinstance(exc, OSError) else "it is now outside the workspace"
        raise MlbuildError(
            f"cannot write the overrides into {path}: {why}; no step ran and no params file changed"
        ) from None
    for path, target, tmp in staged:
        os.replace(tmp, target)
        note(path, "written with the overridden values")


def _stage(target: Path, data: bytes) -> str:
    """``data`` written and synced to a temporary file beside ``target``, with its permissions;
    its name, for ``os.replace``. Nothing is left behind if writing fails (a full disk)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp
