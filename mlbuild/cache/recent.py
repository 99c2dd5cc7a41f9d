"""The action-cache entries a workspace used last, read in one batch instead of one file each.

A no-op run of thousands of steps looked up one entry file per step: open, ``fstat``, read, close.
This table (``.mlbuild/entries.db``, SQLite, loaded whole on first use as the state table is)
keeps each entry's text beside the ``lstat`` of the file it was read from — device, inode, size,
mtime and ctime in nanoseconds. A lookup still ``lstat``\\ s the entry file, so an entry removed by
``gc``, moved to quarantine, rewritten (``--force`` on a step whose outputs differ run to run) or
edited in place is read again from its file: a rewrite is a new inode (entries are replaced
atomically) and any write changes the ctime, which no user can set back. Rows are kept only for
files whose ctime is older than the racy window (:mod:`mlbuild.racy`), so two writes within one
timestamp tick cannot look alike. The text is checked against the entry schema whenever it is
used, as a file's would be; the table is the workspace's own state, a damaged one is ignored.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from pathlib import Path

from mlbuild import atomic, racy

_Key = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns
_KEEP = 50_000  # rows past which those this command did not use are dropped on save


def key_of(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class RecentEntries:
    """Entry texts remembered by the stat of the entry file they were read from (its full path);
    safe to share between the threads of one process."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._rows: dict[str, tuple[_Key, str]] | None = None
        self._dirty: dict[str, tuple[_Key, str]] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def _load(self) -> dict[str, tuple[_Key, str]]:
        with self._lock:
            if self._rows is None:
                self._rows = _read(self.db_path)
            return self._rows

    def lookup(self, path: str) -> tuple[os.stat_result, str | None] | None:
        """``(lstat of path, its remembered text or None)``; ``None`` when ``path`` does not
        exist. The text is given only when the file is exactly the one it was read from."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        rows = self._load()
        row = rows.get(path)
        if row is not None and stat.S_ISREG(st.st_mode) and row[0] == key_of(st):
            with self._lock:
                self._used.add(path)
            return st, row[1]
        return st, None

    def remember(self, path: str, st: os.stat_result, text: str) -> None:
        """``text`` was read from ``path`` whose ``fstat`` was ``st`` (before the read)."""
        if st.st_ctime_ns > racy.cutoff() or st.st_mtime_ns > racy.cutoff():
            return  # written this tick: a rewrite in the same tick would stat the same
        rows = self._load()
        row = (key_of(st), text)
        with self._lock:
            self._used.add(path)
            if rows.get(path) != row:
                rows[path] = row
                self._dirty[path] = row

    def save(self) -> None:
        """Persist the rows learnt in this command; on a full disk or a locked table, skip
        (the next command reads the files); a damaged table is removed, to be made anew."""
        with self._lock:
            if not self._dirty or self._rows is None:
                return
            dirty, used, total = dict(self._dirty), set(self._used), len(self._rows)
            self._dirty.clear()
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            if atomic.planted_file(self.db_path):  # a name removed, never written through
                with contextlib.suppress(OSError):
                    self.db_path.unlink()
                if atomic.planted_file(self.db_path):  # a folder: not ours to remove
                    return
            with sqlite3.connect(self.db_path, timeout=30) as db:
                _create(db)
                db.executemany(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(path, *key, text) for path, (key, text) in dirty.items()],
                )
                if total > _KEEP:  # entries of recipes long edited away
                    stale = [(p,) for p in _paths(db) if p not in used]
                    db.executemany("DELETE FROM entries WHERE path = ?", stale)
        except sqlite3.OperationalError:  # locked, or a full disk: the next command reads files
            return
        except sqlite3.Error:  # not a database (damaged): ours to remake, not to keep ignoring
            with contextlib.suppress(OSError):
                self.db_path.unlink()


def _read(db_path: Path) -> dict[str, tuple[_Key, str]]:
    rows: dict[str, tuple[_Key, str]] = {}
    if atomic.planted_file(db_path) or not db_path.exists():  # SQLite would write through it
        return rows
    try:
        with sqlite3.connect(db_path, timeout=30) as db:
            _create(db)
            for path, dev, ino, size, mtime, ctime, text in db.execute("SELECT * FROM entries"):
                if isinstance(path, str) and isinstance(text, str):
                    rows[path] = ((dev, ino, size, mtime, ctime), text)
    except (sqlite3.Error, ValueError, TypeError):
        return {}  # damaged: every entry is read from its file, as without the table
    return rows


def _paths(db: sqlite3.Connection) -> list[str]:
    return [path for (path,) in db.execute("SELECT path FROM entries")]


def _create(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS entries (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, "
        "size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, text TEXT)"
    )
