"""Content hashes of files and directories (BLAKE3), looked up in the state table first.

BLAKE3 was chosen by measurement: on this class of machine it hashes ~2.5 GB/s on one core against
md5's ~0.5 GB/s, and it releases the GIL, so a thread pool hashes many files in parallel.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from array import array
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import NamedTuple

from blake3 import blake3

from mlbuild import racy
from mlbuild.atomic import special_kind
from mlbuild.cache.names import DIR_SUFFIX
from mlbuild.cache.state import StateTable
from mlbuild.paths import GIT_DIR, LOOP, META_DIR, UnsafePathError

_BIG = 16 << 20
_SKIP_DIRS = {"__pycache__", GIT_DIR, META_DIR, ".dvc", ".ipynb_checkpoints"}


class ManifestEntry(NamedTuple):
    """One file of a hashed directory (a tuple: a directory of 100,000 files builds 100,000)."""

    relpath: str
    digest: str
    size: int
    executable: bool


class Digest:
    """The content hash of a file, or of a directory's manifest (ends in ``.dir``).

    A directory found unchanged by its listing has its manifest built only when asked for: a
    no-op run compares the hash alone.
    """

    __slots__ = ("_load", "_manifest", "size", "value")

    def __init__(
        self,
        value: str,
        size: int,
        manifest: tuple[ManifestEntry, ...] | None = None,
        load: Callable[[], tuple[ManifestEntry, ...]] | None = None,
    ) -> None:
        self.value = value
        self.size = size
        self._manifest = manifest
        self._load = load

    @property
    def manifest(self) -> tuple[ManifestEntry, ...] | None:
        if self._manifest is None and self._load is not None:
            self._manifest = self._load()
        return self._manifest

    @property
    def is_dir(self) -> bool:
        return self._manifest is not None or self._load is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Digest):
            return NotImplemented
        return (self.value, self.size, self.manifest) == (other.value, other.size, other.manifest)

    def __hash__(self) -> int:
        return hash((self.value, self.size))

    def __repr__(self) -> str:
        kind = "directory" if self.is_dir else "file"
        return f"Digest({self.value!r}, {self.size}, {kind})"


@dataclass
class HashStats:
    """How much hashing a command did: the proof that unchanged files are not re-read."""

    files_hashed: int = 0
    bytes_hashed: int = 0
    files_from_state: int = 0


def hash_bytes(data: bytes) -> str:
    return blake3(data).hexdigest()


def _hash_file(path: str, size: int) -> str:
    if size >= _BIG:
        hasher = blake3(max_threads=blake3.AUTO)
        hasher.update_mmap(path)
        return str(hasher.hexdigest())
    with open(path, "rb") as handle:
        return str(blake3(handle.read()).hexdigest())


class Hasher:
    """Hashes paths under a repository root, trusting the state table for unchanged files."""

    def __init__(self, root: Path, state: StateTable, *, threads: int = 4) -> None:
        self.root = root
        self.state = state
        self.threads = threads
        self.stats = HashStats()
        self._lock = threading.Lock()
        self._path_locks: dict[str, threading.Lock] = {}

    def digest(self, relpath: str) -> Digest | None:
        """The digest of a file or directory, or ``None`` when it does not exist.

        Concurrent calls for one path hash it once: the later callers wait and then find every
        file in the state table's memory.
        """
        path_lock = self._path_locks.get(relpath)  # not a new Lock per call to find it is known
        if path_lock is None:
            with self._lock:
                path_lock = self._path_locks.setdefault(relpath, threading.Lock())
        with path_lock:
            return self._digest(relpath)

    def _digest(self, relpath: str) -> Digest | None:
        full = os.path.join(self.root, relpath)  # a str: Path arithmetic is per-step overhead
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return self._digest_dir(full)
        if not stat.S_ISREG(st.st_mode):  # opening a FIFO waits for a writer for ever
            raise UnsafePathError(relpath, _NOT_A_FILE.format(kind=special_kind(st.st_mode)))
        return Digest(self._files([(relpath, full, st)])[0], st.st_size)

    def _digest_dir(self, top: str) -> Digest:
        key = os.path.relpath(top, self.root)
        try:
            folders = _walk(top)
        except _LoopError as loop:
            raise UnsafePathError(f"{key}/{loop.rel}", "; ".join(LOOP)) from None
        listing, newest, count = _listing(folders)
        memo = self.state.dir_memo(key)
        if memo is not None and memo[0] == listing:
            # every file's stat is what it was when the directory hashed to memo's digest
            with self._lock:
                self.stats.files_from_state += count
            return Digest(
                memo[1], memo[2], load=lambda: self._entries(key, _found(folders), memo=True)
            )
        cutoff = racy.cutoff()
        entries = self._entries(key, _found(folders))
        value, size = manifest_digest(entries), sum(e.size for e in entries)
        self.state.record_dir_memo(key, (listing, value, size), trusted=newest <= cutoff)
        return Digest(value, size, entries)

    def _entries(
        self, key: str, found: list[tuple[str, str, os.stat_result]], *, memo: bool = False
    ) -> tuple[ManifestEntry, ...]:
        """The manifest of the files ``found`` in directory ``key``: digests from the state
        table's rows of that directory, the files whose stat changed hashed again (``memo``: the
        files were counted as found in the state table already)."""
        digests = self._dir_files(key, found, memo=memo)
        return tuple(
            map(
                ManifestEntry,
                map(itemgetter(0), found),
                digests,
                [st.st_size for _, _, st in found],
                [bool(st.st_mode & stat.S_IXUSR) for _, _, st in found],
            )
        )

    def _dir_files(
        self, key: str, found: list[tuple[str, str, os.stat_result]], *, memo: bool
    ) -> list[str]:
        results = self.state.lookup_dir(key, found)
        if not self.state.has_dir_rows(key):
            # a state table written before directories had rows of their own: its rows by
            # full path, moved over on this first read
            legacy = self.state.lookup_many([(f"{key}/{rel}", f, st) for rel, f, st in found])
            results = [r if r is not None else old for r, old in zip(results, legacy, strict=True)]
            self.state.moved(key)
            self.state.record_dir(
                key,
                {rel: (st, d) for (rel, _, st), d in zip(found, results, strict=True) if d},
            )
        todo = [i for i, r in enumerate(results) if r is None]
        if not memo:
            with self._lock:
                self.stats.files_from_state += len(found) - len(todo)
        if not todo:
            return results  # type: ignore[return-value]  # no None left
        computed = self._hash_many([(found[i][1], found[i][2]) for i in todo])
        for index, digest in zip(todo, computed, strict=True):
            results[index] = digest
        self.state.record_dir(
            key, {found[i][0]: (found[i][2], d) for i, d in zip(todo, computed, strict=True)}
        )
        self._count(found[i][2] for i in todo)
        return [r for r in results if r is not None]

    def _hash_many(self, items: list[tuple[str, os.stat_result]]) -> list[str]:
        if len(items) > 1 and self.threads > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                return list(pool.map(lambda item: _hash_file(item[0], item[1].st_size), items))
        return [_hash_file(full, st.st_size) for full, st in items]

    def _count(self, hashed: Iterable[os.stat_result]) -> None:
        sizes = [st.st_size for st in hashed]
        with self._lock:
            self.stats.files_hashed += len(sizes)
            self.stats.bytes_hashed += sum(sizes)

    def _files(self, items: list[tuple[str, str, os.stat_result]]) -> list[str]:
        # one lock and one pass for a list of files, not a call per file
        results = self.state.lookup_many(items)
        todo = [i for i, r in enumerate(results) if r is None]
        with self._lock:
            self.stats.files_from_state += len(items) - len(todo)
        if not todo:
            return [r for r in results if r is not None]

        def work(index: int) -> str:
            _, full, st = items[index]
            return _hash_file(full, st.st_size)

        if len(todo) > 1 and self.threads > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                computed = list(pool.map(work, todo))
        else:
            computed = [work(i) for i in todo]
        for index, digest in zip(todo, computed, strict=True):
            key, _, st = items[index]
            self.state.record(key, st, digest)
            results[index] = digest
        with self._lock:
            self.stats.files_hashed += len(todo)
            self.stats.bytes_hashed += sum(items[i][2].st_size for i in todo)
        return [r for r in results if r is not None]


def manifest_digest(entries: tuple[ManifestEntry, ...]) -> str:
    lines = "".join([f"{rel}\0{dig}\0{'x' if x else '-'}\n" for rel, dig, _, x in entries])
    # a file name need not be UTF-8: hash the bytes the file system holds for it
    return hash_bytes(lines.encode("utf-8", "surrogateescape")) + DIR_SUFFIX


class _Folder(NamedTuple):
    """The regular files of one folder as the walk found them, in the order it listed them."""

    full: str  # the folder's path
    rel: str  # its path relative to the walk's top, with a trailing slash ("" for the top)
    names: list[str]
    stats: list[os.stat_result]
    packed: array[int]  # per file: inode, size, ctime_ns, owner's executable bit


def _listing(folders: list[_Folder]) -> tuple[str, int, int]:
    """One hash of the walk's files and their stats — equal exactly when every file's relpath,
    inode, size, ctime and executable bit are — with the newest ctime and the number of files.

    Hashed folder by folder from packed records (the names joined, the stats as one machine-int
    array), so no Python object is made per file: a 100,000-file no-op's listing costs a few ms
    instead of a formatted line per file. Each record is prefixed by the lengths of the folder's
    path and name list and by its file count, so no name can pass for a field or another entry;
    names hold neither NUL nor '/'. A folder listed in another order hashes apart: that only
    costs a check of the files' rows, never a stale answer.
    """
    hasher = blake3()
    count = 0
    for folder in folders:
        rel = folder.rel.encode("utf-8", "surrogateescape")
        names = "\0".join(folder.names).encode("utf-8", "surrogateescape")
        hasher.update(f"{len(rel)}:{len(names)}:{len(folder.names)}:".encode())
        hasher.update(rel)
        hasher.update(names)
        hasher.update(memoryview(folder.packed).cast("B"))
        count += len(folder.names)
    newest = max([max(folder.packed[2::4], default=0) for folder in folders], default=0)
    return str(hasher.hexdigest()), newest, count


def _found(folders: list[_Folder]) -> list[tuple[str, str, os.stat_result]]:
    """The walk's files as (relative posix path, full path, stat), sorted by relative path (the
    manifest's order): made only when the listing changed or a manifest is asked for."""
    found = [
        (f"{folder.rel}{name}", f"{folder.full}/{name}", st)
        for folder in folders
        for name, st in zip(folder.names, folder.stats, strict=True)
    ]
    found.sort(key=itemgetter(0))
    return found


# one walker: with the per-file work packed, threads (which the ``stat`` calls let run) only
# fight for the GIL — 100,000 files on an idle 2-core machine, no-op run: 4 walkers 0.62 s CPU /
# 0.50 s wall, 1 walker 0.44 s / 0.44 s (2026-12-01). More walkers still work (tested).
_WALKERS = 1


_NOT_A_FILE = (
    "is {kind}, neither a file nor a folder; mlbuild never opens one (it could wait for ever): "
    "make it a file"
)


class _LoopError(Exception):
    """The walk met a symbolic link that loops: ``rel`` is its path below the walk's top."""

    def __init__(self, rel: str) -> None:
        super().__init__(rel)
        self.rel = rel


# A folder to list: its path, its path below the walk's top ("" or ending in "/"), and the real
# paths of the folders above it in which the walk followed a symbolic link to a folder (empty
# while no link was followed, the usual case: nothing is resolved for it).
_Todo = tuple[str, str, tuple[str, ...]]


def _walk(top: str) -> list[_Folder]:
    """Every folder under ``top`` with its regular files (links followed), by relative path.

    Raises :class:`_LoopError` for a link that loops on itself (``loop -> loop``) or that leads
    back to a folder the walk is inside (``self -> .``), which would walk forever."""
    done: list[_Folder] = []
    folders = _scan([(top, "", ())], done, deep=False)
    if len(folders) < 2 or _WALKERS < 2:
        _scan(folders, done, deep=True)
    else:
        with ThreadPoolExecutor(_WALKERS) as pool:
            for part in pool.map(_walk_folder, folders):
                done += part
    done.sort(key=attrgetter("rel"))
    return done


def _walk_folder(folder: _Todo) -> list[_Folder]:
    done: list[_Folder] = []
    _scan([folder], done, deep=True)
    return done


def _scan(stack: list[_Todo], done: list[_Folder], *, deep: bool) -> list[_Todo]:
    """Add the folders of ``stack`` to ``done``; with ``deep``, their subfolders too, else
    return the subfolders."""
    subfolders: list[_Todo] = []
    more = stack.append if deep else subfolders.append
    while stack:
        current, rel, linked = stack.pop()
        names: list[str] = []
        stats: list[os.stat_result] = []
        packed = array("q")
        name_add, stat_add, pack = names.append, stats.append, packed.extend
        # listed through the folder's descriptor: each entry's stat is then an fstatat of its
        # name (one path component) instead of a stat of its full path, which the kernel walks
        # component by component — a fifth of the walk's system time at 100,000 files
        fd = os.open(current, _DIR_FLAGS)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    try:
                        is_dir = entry.is_dir()
                    except OSError as exc:  # a link to itself, or to a link back to it
                        if exc.errno == errno.ELOOP:
                            raise _LoopError(f"{rel}{name}") from None
                        raise
                    if is_dir:
                        if name not in _SKIP_DIRS:
                            path = f"{current}/{name}"
                            more(
                                (
                                    path,
                                    f"{rel}{name}/",
                                    # is_symlink: from the listing's type, no system call
                                    _follow(path, current, linked, f"{rel}{name}")
                                    if entry.is_symlink()
                                    else linked,
                                )
                            )
                    elif entry.is_file():
                        st = entry.stat()
                        name_add(name)
                        stat_add(st)
                        try:
                            pack((st.st_ino, st.st_size, st.st_ctime_ns, st.st_mode & 0o100))
                        except OverflowError:  # an inode number of 2**63 or more: one to one
                            pack(
                                (
                                    st.st_ino - (1 << 64),
                                    st.st_size,
                                    st.st_ctime_ns,
                                    st.st_mode & 0o100,
                                )
                            )
        finally:
            os.close(fd)
        done.append(_Folder(current, rel, names, stats, packed))
    return subfolders


def _follow(path: str, folder: str, linked: tuple[str, ...], rel: str) -> tuple[str, ...]:
    """What a folder reached through the link ``path`` (in ``folder``) carries as ``linked``;
    :class:`_LoopError` when the link leads to a folder the walk is inside, or above one.

    The folders the walk is inside are ``folder`` and, for each link followed on the way, the
    folder it was followed in and those above it up to the link's target: a target above the
    deepest of each is above one of them. The walk goes down a target by the names it lists
    except :data:`_SKIP_DIRS`, so a target above a folder only through one of those is no loop.
    """
    real = os.path.realpath(path)
    here = os.path.realpath(folder)
    for inside in (*linked, here):
        if inside == real or (
            inside.startswith(real.rstrip("/") + "/")
            and _SKIP_DIRS.isdisjoint(inside[len(real.rstrip("/")) + 1 :].split("/"))
        ):
            raise _LoopError(rel)
    return (*linked, here)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
