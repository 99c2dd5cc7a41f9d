"""Every path the engine reads, writes or removes goes through here, and stays where it belongs.

A path from the recipe, the command line, a run record or the cache is normalised against the
workspace root and refused when it is empty, is the root itself, leaves the root (lexically, or
once the symlinks of its existing components are resolved), lies in ``.git`` or ``.mlbuild``, or
resolves into the cache. A path the engine *writes or removes* is also refused when it overlaps a
protected path: the recipe and Hydra's config. The checks run at ``validate`` time and again just
before each removal or restore, because the filesystem can change in between (a directory
replaced by a symlink).

The module is the bottom layer (stdlib and :mod:`mlbuild.errors` only), so every layer can use it,
and it also holds the one "do these paths overlap?" helper (:func:`is_within`, :func:`overlaps`,
and :class:`PathIndex` to ask it of many paths at once).
"""

from __future__ import annotations

import bisect
import os
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

from mlbuild.errors import UsageError

GIT_DIR = ".git"
META_DIR = ".mlbuild"
# a control character in a recipe path (the NUL byte has its own message)
# C0, DEL and C1 controls (U+009B is CSI, U+0085 a newline to some terminals), the line and
# paragraph separators, and the bidirectional overrides that reorder what a reader sees
_CONTROL = re.compile("[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MAX_PATH = 4095  # PATH_MAX less the NUL; longer paths fail in os.stat with ENAMETOOLONG
_MAX_NAME = 255  # NAME_MAX, in bytes
T = TypeVar("T")
_ROOT = ("is the repository root itself", "name a file or directory inside it")
LOOP = ("goes through a symlink loop", "remove the loop")


class UnsafePathError(UsageError):
    """A path that would leave the workspace or touch what mlbuild does not own.

    ``reason`` completes a sentence that starts with the quoted path and ends with the fix, so a
    caller can locate it (``ml.yaml:4:22: steps.a.outs[0]: '<path>' <reason>``).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"'{path}' {reason}")


def shortened(path: str, limit: int = 160) -> str:
    """``path`` for a message: kept whole up to ``limit`` characters, else its start and its end
    and its length in bytes (below a tree deeper than PATH_MAX a path is many kilobytes)."""
    if len(path) <= limit:
        return path
    size = len(path.encode("utf-8", "surrogateescape"))
    return f"{path[: limit // 2]}…{path[-(limit * 3 // 8) :]}, {size:,} bytes"


def is_within(path: str, parent: str) -> bool:
    """``path`` is ``parent`` or lies below it (both normalised, relative, posix)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def overlaps(a: str, b: str) -> bool:
    """One of the two normalised paths holds the other (or they are the same)."""
    return is_within(a, b) or is_within(b, a)


class PathIndex(Generic[T]):
    """Normalised paths, each with a value, asked which of them hold or lie inside a path.

    A question costs one lookup per folder of the path plus a binary search, not a scan of every
    path, so the all-pairs checks of a recipe (outs written twice, the producers of each dep, "is
    this produced?") stay linear in graphs of thousands of steps. Answers come in the order the
    paths were added, as the scans they replace found them.
    """

    def __init__(self, items: Iterable[tuple[str, T]] = ()) -> None:
        self._entries: dict[str, list[tuple[int, T]]] = {}  # path → (order added, value)
        self._sorted: list[str] = []  # the paths below a folder are one contiguous run
        self._added = 0
        for path, value in items:  # sorted once below, not one insertion per path
            self._entries.setdefault(path, []).append((self._added, value))
            self._added += 1
        self._sorted.extend(sorted(self._entries))

    def add(self, path: str, value: T) -> None:
        if path not in self._entries:
            bisect.insort(self._sorted, path)
            self._entries[path] = []
        self._entries[path].append((self._added, value))
        self._added += 1

    def paths(self) -> list[str]:
        """Every indexed path once, in the order first added."""
        return list(self._entries)

    def holding(self, path: str) -> list[tuple[str, T]]:
        """The indexed paths that are ``path`` or a folder above it (``is_within(path, it)``)."""
        return self._answer(self._holding(path))

    def inside(self, path: str) -> list[tuple[str, T]]:
        """The indexed paths strictly below folder ``path``."""
        return self._answer(self._inside(path))

    def overlapping(self, path: str) -> list[tuple[str, T]]:
        """The indexed paths that hold ``path`` or lie inside it (``overlaps(path, it)``)."""
        return self._answer([*self._holding(path), *self._inside(path)])

    def overlaps_any(self, path: str) -> bool:
        """Whether :meth:`overlapping` would find anything (without gathering it)."""
        if path in self._entries:
            return True
        end = path.find("/")
        while end != -1:
            if path[:end] in self._entries:
                return True
            end = path.find("/", end + 1)
        prefix = f"{path}/"
        at = bisect.bisect_left(self._sorted, prefix)
        return at < len(self._sorted) and self._sorted[at].startswith(prefix)

    def _holding(self, path: str) -> list[tuple[int, str, T]]:
        found = [(n, path, v) for n, v in self._entries.get(path, ())]
        end = path.find("/")
        while end != -1:
            folder = path[:end]
            found += [(n, folder, v) for n, v in self._entries.get(folder, ())]
            end = path.find("/", end + 1)
        return found

    def _inside(self, path: str) -> list[tuple[int, str, T]]:
        prefix = f"{path}/"
        found: list[tuple[int, str, T]] = []
        at = bisect.bisect_left(self._sorted, prefix)
        while at < len(self._sorted) and self._sorted[at].startswith(prefix):
            below = self._sorted[at]
            found += [(n, below, v) for n, v in self._entries[below]]
            at += 1
        return found

    @staticmethod
    def _answer(found: list[tuple[int, str, T]]) -> list[tuple[str, T]]:
        return [(path, value) for _, path, value in sorted(found, key=lambda hit: hit[0])]


def normalise(raw: str, *, where: str = "the repository") -> str:
    """``raw`` as a normal relative posix path (``a/./b/`` → ``a/b``); lexical only.

    Raises :class:`UnsafePathError` for an empty path, a NUL byte, an over-long path, an absolute
    path or one that climbs out with ``..``, and the root itself (``.``, ``sub/..``).
    """
    if not raw.strip():
        raise UnsafePathError(raw, "is empty; name a file or directory inside the repository")
    if "\0" in raw:
        raise UnsafePathError(raw.replace("\0", "\\0"), "contains a NUL byte; no path can")
    encoded = os.fsencode(raw)
    # no name is longer than the whole path: most paths need no look at their names
    longest = (
        len(encoded)
        if len(encoded) <= _MAX_NAME
        else max(len(os.fsencode(part)) for part in raw.split("/"))
    )
    if len(encoded) > _MAX_PATH or longest > _MAX_NAME:
        raise UnsafePathError(
            raw[:60] + "…",
            f"is too long ({len(encoded)} bytes, a name of {longest}); a path may have at most "
            f"{_MAX_PATH} bytes and each name {_MAX_NAME}",
        )
    if posixpath.isabs(raw):
        raise UnsafePathError(raw, f"is outside {where}; use a path inside it")
    normal = posixpath.normpath(raw)
    if normal == ".." or normal.startswith("../"):
        raise UnsafePathError(raw, f"is outside {where}; use a path inside it")
    if normal == ".":
        raise UnsafePathError(raw, "; ".join(_ROOT))
    return normal


@dataclass(frozen=True)
class Fence:
    """The paths of one workspace that mlbuild may read, and those it may write or remove.

    ``protected`` maps normalised paths the engine never writes or removes to what they are
    (``{"ml.yaml": "the recipe", "conf": "Hydra's config"}``); ``cache`` is the cache directory
    (``MLBUILD_CACHE_DIR`` may put it anywhere).
    """

    root: Path
    protected: dict[str, str] = field(default_factory=dict)
    cache: Path | None = None
    # set by at_once(): symlinks resolved once for many checks made at one moment
    _links: _Links | None = field(default=None, compare=False, repr=False)

    def at_once(self) -> Fence:
        """This fence for many checks made at one moment (every path of a recipe, before a
        run): each folder's symlinks are resolved once for all the paths below it, not once per
        path. The answers are those of :meth:`check` at the moment the folder was first
        resolved, so it is for a sweep of checks, never kept for later ones."""
        return replace(self, _links=_Links(memo=True))

    def check(self, raw: str, *, writes: bool) -> str:
        """``raw`` normalised, or :class:`UnsafePathError` saying why it is refused.

        ``writes``: the engine writes or removes the path (outs, metrics, restore targets,
        datasets DVC fetches), so the recipe and Hydra's config are refused too.
        """
        links = self._links
        if links is not None:  # a sweep: a path read and written (an out and the next dep)
            known = links.passed.get(raw)
            if known is not None and (not writes or self._protected(known) is None):
                return known
        control = _CONTROL.search(raw)
        if control is not None:
            # a newline or an escape sequence in a recipe path is a mistake, and would forge
            # lines in plan, logs and CI output; files with such names are still restored
            raise UnsafePathError(
                "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw),
                f"contains the control character {control.group()!r}; rename it without one",
            )
        rel = normalise(raw, where=f"the repository ({self.root})")
        refusal = self._refusal(rel, writes)
        if refusal is not None:
            raise UnsafePathError(raw, "; ".join(refusal))
        links = links or _Links(memo=False)
        root = links.text(self.root)
        real_root = links.real(root)
        if links.memo and links.plain(rel, root):
            real, shown = os.path.join(real_root, rel), rel  # no symlink on the way: rel stands
        elif (real := links.real(os.path.join(root, rel))) == real_root:
            refusal, shown = _ROOT, "."
        elif not _inside(real, real_root):
            shown = real
            refusal = (f"is outside the repository ({self.root})", "use a path inside it")
        elif _unresolved(real, real_root, links.islink):
            shown = real
            refusal = LOOP
        else:
            shown = _below(real, real_root).replace(os.sep, "/")
            refusal = None if shown == rel else self._refusal(shown, writes)
        if refusal is None and self._in_cache(real, real_root, links):
            refusal = (
                f"is inside mlbuild's cache ({self.cache})",
                "use a path outside it (MLBUILD_CACHE_DIR names the cache)",
            )
        if refusal is None:
            if links.memo and shown == rel:  # resolves where it reads: only writes asked again
                links.passed[raw] = rel
            return rel
        link = self._symlink_on(rel, real_root, writes)
        if link is None:
            raise UnsafePathError(raw, "; ".join(refusal))
        what, fix = refusal
        raise UnsafePathError(
            raw,
            f"resolves through the symlink '{link}' to '{shown}', which {what}; {fix}, or "
            "replace the symlink with a real directory",
        )

    def target(self, rel: str) -> Path:
        """The absolute path the engine may write or remove now for ``rel``: re-checked at the
        last moment, because the filesystem may have changed since ``validate``."""
        return self.root / self.check(rel, writes=True)

    def check_target(self, dest: Path) -> None:
        """Refuse to write or remove absolute ``dest`` unless it is a path :meth:`target` allows."""
        try:
            rel = os.path.relpath(dest, self.root).replace(os.sep, "/")
        except ValueError:  # another drive (Windows)
            rel = str(dest)
        self.check(str(dest) if rel.startswith("../") else rel, writes=True)

    def check_output(self, dest: Path) -> None:
        """Refuse a destination named on the command line (``runs get -o``) that the engine
        must not write: inside the workspace, what :meth:`target` refuses; anywhere, the cache.
        ``dest`` itself is replaced, never followed if it is a symlink, so only its directory
        is resolved."""
        real_root = _real(self.root)
        real = os.path.join(_real(dest.parent), dest.name)
        shown, refusal = str(dest), None
        if real == real_root or _inside(real, real_root):
            shown = normalise(os.path.relpath(real, real_root).replace(os.sep, "/"))
            refusal = self._refusal(shown, writes=True)
        if refusal is None and self._in_cache(real, real_root):
            refusal = (f"is inside mlbuild's cache ({self.cache})", "choose another place")
        if refusal is not None:
            raise UnsafePathError(shown, "; ".join(refusal))

    def _refusal(self, rel: str, writes: bool) -> tuple[str, str] | None:
        """Why normalised ``rel`` is refused, as (what it is, what to do), or ``None``."""
        reserved = _reserved(rel)
        if reserved is not None or not writes:
            return reserved
        return self._protected(rel)

    def _protected(self, rel: str) -> tuple[str, str] | None:
        """Why normalised ``rel`` may be read but never written or removed, or ``None``."""
        never = "steps may read it, but mlbuild never writes or removes it"
        for path, what in self.protected.items():
            if rel == path:
                return (f"is {what}", never)
            if is_within(rel, path):
                return (f"is inside {what} ('{path}')", never)
            if is_within(path, rel):
                return (f"holds {what} ('{path}')", "name a path that does not contain it")
        return None

    def _in_cache(self, real: str, real_root: str, links: _Links | None = None) -> bool:
        if self.cache is None:
            return False
        links = links or _Links(memo=False)
        cache = links.real(links.text(self.cache))
        # a workspace inside its own cache directory is odd but not ours to refuse path by path
        return _inside(real, cache) and not _inside(real_root, cache)

    def _symlink_on(self, rel: str, real_root: str, writes: bool) -> str | None:
        """The first symlinked component of ``rel`` that leads somewhere refused."""
        parts = rel.split("/")
        for count in range(1, len(parts) + 1):
            prefix = "/".join(parts[:count])
            full = self.root / prefix
            if not full.is_symlink():
                continue
            real = _real(full)
            if real == real_root:
                return prefix
            if not _inside(real, real_root) or self._in_cache(real, real_root):
                return prefix
            resolved = os.path.relpath(real, real_root).replace(os.sep, "/")
            if self._refusal(resolved, writes) is not None:
                return prefix
        return None


def inner(raw: str) -> str:
    """``raw``, a path inside a directory mlbuild is creating (an entry of a directory object read
    back from the cache), normalised; refused if it climbs out or reaches into ``.git`` or
    ``.mlbuild``. Lexical only: the directory is new, so it holds no symlink to follow."""
    rel = normalise(raw, where="the directory being restored")
    reserved = _reserved(rel)
    if reserved is not None:
        raise UnsafePathError(raw, "; ".join(reserved))
    return rel


def _reserved(rel: str) -> tuple[str, str] | None:
    """Why normalised ``rel`` lies in ``.git`` or ``.mlbuild``, or ``None``."""
    parts = [p.casefold() for p in rel.split("/")]  # .GIT is .git on macOS and Windows
    for name, owner in ((GIT_DIR, "git's own files"), (META_DIR, "mlbuild's state and cache")):
        if name in parts:
            where = "is" if parts[-1] == name else "is inside"
            return (f"{where} {name} ({owner})", "mlbuild never reads or writes there")
    return None


def _real(path: Path | str) -> str:
    return os.path.realpath(path)


class _Links:
    """``os.path.realpath`` and ``os.path.islink``, each folder resolved once when ``memo``.

    With ``memo``, ``realpath(folder/name)`` is taken as ``realpath(folder)/name`` when that is
    no symlink — what ``realpath`` itself computes, component by component — and from
    ``realpath`` itself otherwise, so only the last component of each path costs an ``lstat``.
    """

    def __init__(self, *, memo: bool) -> None:
        self.memo = memo
        self._real: dict[str, str] = {}
        self._links: dict[str, bool] = {}
        self._plain: dict[str, bool] = {}
        self._texts: dict[int, str] = {}
        # raw path → its normalised form, for each path that passed and resolves to itself: a
        # second check of it in the sweep asks only whether it may be written
        self.passed: dict[str, str] = {}

    def text(self, path: Path) -> str:
        """``str(path)``, once per sweep for the root and the cache (it was a tenth of one)."""
        if not self.memo:
            return str(path)
        found = self._texts.get(id(path))
        if found is None:
            found = self._texts[id(path)] = str(path)
        return found

    def plain(self, rel: str, root: str) -> bool:
        """No component of normalised ``rel`` below the root (its text ``root``) is a symlink
        (``memo`` only): each folder asked once for all the paths below it, then one ``lstat``
        per path. Then ``rel`` resolves to itself below the resolved root."""
        found = self._plain.get(rel)
        if found is None:
            folder = rel.rpartition("/")[0]
            found = (not folder or self.plain(folder, root)) and not self.islink(
                os.path.join(root, rel)
            )
            self._plain[rel] = found
        return found

    def real(self, path: str) -> str:
        if not self.memo:
            return os.path.realpath(path)
        found = self._real.get(path)
        if found is None:
            found = self._real[path] = self._resolve(path)
        return found

    def _resolve(self, path: str) -> str:
        folder, name = os.path.split(path)
        if not folder or folder == path or name in ("", ".", ".."):
            return os.path.realpath(path)
        joined = os.path.join(self.real(folder), name)
        return os.path.realpath(path) if self.islink(joined) else joined

    def islink(self, path: str) -> bool:
        if not self.memo:
            return os.path.islink(path)
        found = self._links.get(path)
        if found is None:
            found = self._links[path] = os.path.islink(path)
        return found


def _below(real: str, real_root: str) -> str:
    """``real`` relative to ``real_root``, both resolved and ``real`` inside it: what
    ``os.path.relpath`` answers, without its work on paths that may not be normal."""
    return real[len(real_root.rstrip(os.sep)) + 1 :]


def _unresolved(real: str, real_root: str, islink: Callable[[str], bool] = os.path.islink) -> bool:
    """A component of ``real`` below the root is still a symlink: realpath met a loop."""
    current = real_root
    for part in _below(real, real_root).split(os.sep):
        current = os.path.join(current, part)
        if islink(current):
            return True
    return False


def _inside(real: str, real_root: str) -> bool:
    """Absolute ``real`` is strictly below ``real_root`` (the root itself is not inside)."""
    return real != real_root and real.startswith(real_root.rstrip(os.sep) + os.sep)
