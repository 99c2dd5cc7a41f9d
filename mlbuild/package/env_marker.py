"""``mlbuild env build``'s fast answer when nothing changed: a marker in ``.mlbuild/`` that says
"the recipe with these bytes names this lock, whose environment with these bytes is at PATH".

Learning which lock the recipe names takes loading the workspace and compiling the graph (0.3 s
and most of mlbuild's modules). An unchanged lock is the common case (every CI job calls ``env
build``), so after a build the answer is written here, and the next call checks only: the
recipe's bytes, the lock's bytes, and that the environment's own marker is still there — the
standard library and three small reads, no pip, no subprocess, no graph. Anything different (or
unreadable) falls through to the full path, which writes the marker again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mlbuild import atomic

MARKER = "env-build.json"
ENV_MARKER = "mlbuild-env.json"  # an environment's own marker, written last by its build
FORMAT = 1
# what else decides where the environment is: the shared cache directory
_CACHE_ENV = "MLBUILD_CACHE_DIR"


@dataclass(frozen=True)
class KnownEnv:
    lock: str  # the lock as the recipe names it
    path: Path
    packages: int


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _key(recipe: Path) -> list[str | None]:
    from mlbuild import __version__

    return [str(FORMAT), __version__, str(recipe), os.environ.get(_CACHE_ENV), _digest(recipe)]


def find_recipe(start: Path, name: str) -> Path | None:
    """The nearest ``name`` at or above ``start`` (as ``Workspace.find`` looks for it)."""
    for folder in [start, *start.parents]:
        if (folder / name).is_file():
            return (folder / name).absolute()
    return None


def known(recipe: Path, env_marker: str) -> KnownEnv | None:
    """The environment the marker of ``recipe``'s workspace vouches for, if all still holds."""
    try:
        raw = json.loads((recipe.parent / ".mlbuild" / MARKER).read_text(encoding="utf-8"))
        if raw["key"] != _key(recipe):
            return None
        lock = str(raw["lock"])
        if _digest(recipe.parent / lock) != raw["lock_digest"]:
            return None
        path = Path(raw["path"])
        if not (path / env_marker).is_file() or not (path / "bin" / "python").exists():
            return None
        return KnownEnv(lock, path, int(raw["packages"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remember(recipe: Path, lock: str, path: Path, packages: int) -> None:
    """Write the marker after a full ``env build`` (best effort: it is only a shortcut)."""
    digest = _digest(recipe.parent / lock)
    if digest is None:
        return
    record = {
        "key": _key(recipe),
        "lock": lock,
        "lock_digest": digest,
        "path": str(path),
        "packages": packages,
    }
    with contextlib.suppress(OSError):
        atomic.write_json(recipe.parent / ".mlbuild" / MARKER, record, sync=False)
