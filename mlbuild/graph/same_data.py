"""A recipe edited without changing its data: the compiled graph reused, its positions renewed.

Most edits of ``ml.yaml`` between two plans add a comment, re-indent, or re-flow a mapping; the
value YAML loads is the same, only where each key sits moved. What compiling makes of a recipe is
a function of its *data* (and of the params files, the environment variables and mlbuild's code,
which the compiled entry checks as it always has), except for where things are written: the
graph's ``positions`` (key path → line, column), ``lines`` (the recipe's text, for excerpts) and
``recipe_file``. So an entry is found by its data too (:func:`data_key`), and a graph read from it
gets the positions of the recipe as it is now (:func:`located`): an error found after the
edit (a dep that went missing) names the line it is on now.

What counts as the same data is strict: every mapping's keys in their order, every value with its
type (``1``, ``1.0`` and ``true`` differ; so do ``"1"`` and ``1``), aliases expanded. A value of
any type but the JSON ones (a YAML timestamp, ``!!binary``, ``!!set``) has no key: compiled anew.
A graph whose steps carry problems is never reused: their messages may name a line (a param that
does not resolve says where it is written), which the edit may have moved.

The pointer from a data key to the entry holding its graph is a file in ``.mlbuild/same-data/``
naming that entry; the entry itself records the data key it was compiled from, and a pointer is
followed only when the two agree, so a stale, damaged or planted pointer compiles anew.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.cache import hash_bytes
from mlbuild.recipe._yaml import SourceMap, format_path

_KEEP = 64  # pointers kept; the oldest go first
_NAME = re.compile(r"^[0-9a-f]{64}$")  # what an entry's name (a digest) looks like
_MAX = 4096  # bytes of a pointer read at most (it holds an entry's name)


class _Unlike(Exception):
    """A value of a type whose equality the key does not capture."""


def data_key(data: Any, context: list[Any]) -> str | None:
    """The key of recipe ``data`` (what YAML loaded) compiled under ``context`` (mlbuild's
    version, the overrides, …): equal exactly when the data are, type for type and key order
    kept. ``None`` when the data hold a value of another type than JSON's."""
    try:
        stamp = json.dumps([context, _tagged(data)], allow_nan=True)
    except (_Unlike, RecursionError, ValueError):
        return None
    return hash_bytes(stamp.encode("utf-8", "surrogatepass"))


def _tagged(value: Any) -> Any:
    """``value`` as JSON that keeps what JSON would lose: a mapping's key types and order (a
    mapping is ``["d", k, v, …]``, a list ``["l", …]``, so neither reads as the other)."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        out: list[Any] = ["d"]
        for key, item in value.items():
            out.append(_tagged(key))
            out.append(_tagged(item))
        return out
    if kind is list:
        return ["l", *[_tagged(item) for item in value]]
    raise _Unlike(kind.__name__)


def source_positions(source: SourceMap) -> tuple[dict[str, list[int]], dict[int, str]]:
    """The graph's ``positions`` and ``lines`` for the recipe ``source`` maps."""
    positions = {format_path(p): [pos.line, pos.column] for p, pos in source.values.items()}
    return positions, dict(enumerate(source.lines, start=1))


def located(raw: dict[str, Any], source: SourceMap) -> dict[str, Any] | None:
    """The graph ``raw`` (as a compiled entry holds it) located in the recipe ``source`` maps:
    its positions, lines and file name. ``None`` when a step carries a problem (whose message
    may name a line) or the steps are not shaped as :meth:`Graph.to_json` writes them."""
    try:
        if any(step["problems"] for step in raw["steps"].values()):
            return None
    except (KeyError, TypeError, AttributeError):
        return None
    positions, lines = source_positions(source)
    return {**raw, "positions": positions, "lines": lines, "recipe_file": source.file}


def find(meta_dir: Path, key: str) -> str | None:
    """The name of the compiled entry last written for data ``key``, if a pointer says so."""
    folder = _folder(meta_dir)
    if folder is None:
        return None
    try:  # not through a symlink, nor blocking on a FIFO planted as a pointer
        name = atomic.read_own(folder / key, _MAX).decode("ascii").strip()
    except (OSError, ValueError):
        return None
    return name if _NAME.match(name) else None


def remember(meta_dir: Path, key: str, name: str) -> None:
    """Point data ``key`` at the compiled entry ``name``; a cache: a pointer not written is a
    compile the next edit does in full."""
    folder = _folder(meta_dir)
    if folder is None:
        return
    try:
        atomic.write_text(folder / key, name, sync=False)
        pointers = [p for p in folder.iterdir() if _NAME.match(p.name)]  # not a writer's temp
        pointers.sort(key=lambda p: p.stat().st_mtime)
        for old in pointers[:-_KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        return


def _folder(meta_dir: Path) -> Path | None:
    """The pointers' folder, ``None`` when something else stands at its path (a symlink, maybe
    out of the workspace; a file): then no pointer is read or written there, and each edit
    compiles in full, as with no pointer. Not removed: mlbuild removes only what it made."""
    folder = meta_dir / "same-data"
    return None if atomic.planted(folder) else folder
