"""The stat record that proves a dataset's workspace copy still holds a verified version.

A DVC-tracked dataset's version is never re-hashed when nothing changed: mlbuild keeps the stat of
every file it last saw verified (``.mlbuild/data/NAME.json``, with each file's md5) and, apart, one
hash of those stats (``.mlbuild/data/verified/NAME.json``), so a no-op run costs one ``stat`` per
file and one hash compared. The stamp is the ctime, not the mtime, which anyone can set back (a
file rewritten in place with its size kept and its mtime restored looked verified as it was).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from array import array
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from blake3 import blake3

from mlbuild import atomic
from mlbuild.atomic import special_kind

# [relpath, inode, size, ctime_ns]
Stat = list[Any]


class _Folder(NamedTuple):
    rel: str  # relative to the dataset, with a trailing slash ("" for its top)
    names: list[str]  # in the order the folder listed them
    packed: array[int]  # per file: inode, size, ctime_ns


class Snapshot:
    """The stat of every file of a dataset's workspace copy, kept folder by folder as packed
    records: a no-op run hashes them (:attr:`digest`) without a Python object per file; the
    per-file list (:attr:`files`) is made only when the copy must be checked again.

    :attr:`plain`: no entry is a symlink or a name DVC treats specially (``.git``, ``.dvcignore``
    ...), so :attr:`files` is exactly the listing DVC's manifest is made of."""

    __slots__ = ("_files", "_folders", "plain")

    def __init__(self, folders: list[_Folder], *, plain: bool = False) -> None:
        self._folders = sorted(folders, key=itemgetter(0))
        self._files: list[Stat] | None = None
        self.plain = plain

    @property
    def files(self) -> list[Stat]:
        """``[relpath, inode, size, ctime_ns]`` of each file, sorted by relpath (DVC's order)."""
        if self._files is None:
            found = [
                [f"{rel}{name}", packed[3 * i] % _WRAP, packed[3 * i + 1], packed[3 * i + 2]]
                for rel, names, packed in self._folders
                for i, name in enumerate(names)
            ]
            found.sort(key=itemgetter(0))
            self._files = found
        return self._files

    @property
    def digest(self) -> str:
        """One hash of every file's relpath and stat: equal exactly when they are. Each folder's
        record is prefixed by the lengths of its path and names and its file count, so no name can
        pass for a field or another entry (names hold neither NUL nor '/'). A folder listed in
        another order hashes apart: that costs a check of the record, never a stale answer."""
        hasher = blake3()
        for rel, names, packed in self._folders:
            folder = rel.encode("utf-8", "surrogateescape")
            joined = "\0".join(names).encode("utf-8", "surrogateescape")
            hasher.update(f"{len(folder)}:{len(joined)}:{len(names)}:".encode())
            hasher.update(folder)
            hasher.update(joined)
            hasher.update(memoryview(packed).cast("B"))
        return str(hasher.hexdigest())


class NotData(Exception):
    """A dataset holds something that is neither a file nor a folder (a FIFO, a socket, a device,
    or a symlink to one): reading it could block for ever or never end, and no DVC version
    can name it."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is {kind}")
        self.path = path
        self.kind = kind


def snapshot(full: Path) -> Snapshot | None:
    """The stat of every file under ``full`` (or of the file), or ``None`` if it is absent.

    Raises :class:`NotData` for an entry that is neither a file nor a folder, before anything
    reads it: the walk is the first look any check takes at a dataset, so no later check (ours
    or DVC's) ever opens a FIFO or a device."""
    try:
        st = os.stat(full)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        if not stat.S_ISREG(st.st_mode):
            raise NotData(str(full), special_kind(st.st_mode))
        one = (
            st.st_ino if st.st_ino < _WRAP // 2 else st.st_ino - _WRAP,
            st.st_size,
            st.st_ctime_ns,
        )
        return Snapshot([_Folder("", [""], array("q", one))])
    folders: list[_Folder] = []
    plain = True
    stack = [(str(full), "")]
    while stack:
        current, rel = stack.pop()
        names: list[str] = []
        packed = array("q")
        add, pack = names.append, packed.extend
        # listed through the folder's descriptor: each stat is an fstatat of one name, not a
        # walk of the full path by the kernel (a fifth of the system time at 100,000 files)
        fd = os.open(current, _DIR_FLAGS)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    # DVC leaves a symlinked directory out of a tracked directory (and a link
                    # back up the tree would be walked forever); a symlinked file it reads through
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{current}/{entry.name}", f"{rel}{entry.name}/"))
                        plain = plain and entry.name not in DVC_SKIPS
                        continue
                    plain = plain and not entry.is_symlink()
                    try:
                        est = entry.stat()
                    except OSError as exc:
                        _refuse_dangling(exc, f"{current}/{entry.name}")
                        raise
                    if stat.S_ISREG(est.st_mode):
                        add(entry.name)
                        try:
                            pack((est.st_ino, est.st_size, est.st_ctime_ns))
                        except OverflowError:  # an inode number of 2**63 or more
                            pack((est.st_ino - _WRAP, est.st_size, est.st_ctime_ns))
                    elif not stat.S_ISDIR(est.st_mode):  # (a symlinked folder is left out)
                        link = "a symlink to " if entry.is_symlink() else ""
                        raise NotData(f"{current}/{entry.name}", link + special_kind(est.st_mode))
        finally:
            os.close(fd)
        plain = plain and DVC_SKIPS.isdisjoint(names)
        folders.append(_Folder(rel, names, packed))
    return Snapshot(folders, plain=plain)


def refuse_special(entry: os.DirEntry[str], path: str) -> None:
    """Raise :class:`NotData` unless ``entry`` (symlinks followed) is a file or a folder."""
    try:
        mode = entry.stat().st_mode
    except OSError as exc:
        _refuse_dangling(exc, path)
        raise
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        link = "a symlink to " if entry.is_symlink() else ""
        raise NotData(path, link + special_kind(mode))


def _refuse_dangling(exc: OSError, path: str) -> None:
    """A symlink to nothing (or a loop) as :class:`NotData`: DVC cannot hash it either."""
    if exc.errno == errno.ELOOP:
        raise NotData(path, "a symlink loop") from None
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        raise NotData(path, "a symlink to nothing") from None


# names DVC leaves out of a directory's manifest, or that change what it leaves out
DVC_SKIPS = frozenset({".dvcignore", ".git", ".hg", ".dvc"})
# inode numbers are unsigned 64-bit, the packed array's ints signed: one of 2**63 or more is
# packed as itself minus 2**64 (one to one, so no two inodes pack alike) and read back modulo 2**64
_WRAP = 1 << 64
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Record:
    """What mlbuild last verified about a dataset's workspace copy."""

    version: str
    files: list[Stat]
    source: dict[str, Any] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)  # by relpath, for the stats in ``files``


def read_record(meta: Path, name: str) -> Record | None:
    try:
        raw = json.loads(atomic.read_own(meta / "data" / f"{name}.json"))
        md5 = raw.get("md5", {})
        if not isinstance(md5, dict) or not all(map(_is_md5, md5.values())):
            md5 = {}  # a damaged record only costs a re-read
        return Record(raw["version"], raw["files"], raw.get("source", {}), md5)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _is_md5(value: object) -> bool:
    # a set test in C: a record of 100,000 files checks 100,000 of these
    return isinstance(value, str) and len(value) == 32 and _HEX.issuperset(value)


_HEX = frozenset("0123456789abcdef")


def write_record(meta: Path, name: str, record: Record, now: Snapshot) -> None:
    """Remember ``record``; and, when its files are exactly the stats ``now`` holds, the short
    summary a no-op run compares (a record without its racy files is checked again next time)."""
    # derived data, rebuilt if lost; its fields by hand: ``asdict`` deep-copies 100,000 stat lists
    body = {
        "version": record.version,
        "files": record.files,
        "source": record.source,
        "md5": record.md5,
    }
    atomic.write_json(meta / "data" / f"{name}.json", body, sync=False)
    # written second: one left behind by a crash still says only what was true, that these
    # stats were verified as that version
    if record.files == now.files:
        write_verified(meta, name, record.version, now)


def write_verified(meta: Path, name: str, version: str, now: Snapshot) -> None:
    """Remember that dataset ``name``, its files with the stats ``now``, is ``version``."""
    summary = {"version": version, _STATS: now.digest}
    atomic.write_json(meta / "data" / _VERIFIED / f"{name}.json", summary, sync=False)


_VERIFIED = "verified"
# the key of the packed stats' hash; a summary of an older mlbuild (its hash under "files", of
# another encoding) has none and is checked against the record once, then written anew
_STATS = "stats"


def is_verified(meta: Path, name: str, version: str, now: Snapshot) -> bool:
    """Whether the workspace copy of dataset ``name``, whose files have the stats ``now``, was
    verified as ``version`` with exactly these stats."""
    try:
        raw = json.loads(atomic.read_own(meta / "data" / _VERIFIED / f"{name}.json"))
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("version") == version and raw.get(_STATS) == now.digest
