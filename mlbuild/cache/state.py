"""The state table: path → (inode, size, ctime_ns) → content hash; unchanged files are not re-read.

The stamp is the ctime, not the mtime: anyone can set a file's mtime back (``touch -d``, ``cp -p``,
``rsync -t --inplace``, ``os.utime``), so a file rewritten in place with its size kept and its
mtime restored looked unchanged and its old hash answered for new content. Every write, and every
change of the mtime, sets the ctime to now, which no user can set back. (The ``mtime_ns`` column
holds it: a row of an older mlbuild, which held the mtime, matches only a file whose ctime equals
that mtime — one not changed since it was written, which the row describes.)

Stored in SQLite (stdlib, no server) and loaded whole on first use: a few thousand rows load in a
millisecond or two, far cheaper than one query per file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from mlbuild import racy

_Row = tuple[int, int, int, str]


class StateTable:
    """Remembered file hashes keyed by path; safe to share between threads of one process.

    Rows are kept in memory as they are recorded; :meth:`save` writes the ones old enough to trust.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._rows: dict[str, _Row] | None = None
        self._dirty: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, _Row]:
        with self._lock:
            if self._rows is None:
                rows: dict[str, _Row] = {}
                if self.db_path.exists():
                    with sqlite3.connect(self.db_path, timeout=30) as db:
                        _create(db)
                        for path, inode, size, mtime, digest in db.execute("SELECT * FROM files"):
                            rows[path] = (inode, size, mtime, digest)
                self._rows = rows
            return self._rows

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        row = self._load().get(path)
        if row is not None and row[:3] == (st.st_ino, st.st_size, st.st_ctime_ns):
            return row[3]
        return None

    def record(self, path: str, st: os.stat_result, digest: str) -> None:
        row = (st.st_ino, st.st_size, st.st_ctime_ns, digest)
        rows = self._load()
        with self._lock:
            rows[path] = row
            self._dirty[path] = row

    def save(self) -> None:
        """Persist recorded rows, except those written too recently to trust (racy window)."""
        with self._lock:
            cutoff = racy.cutoff()
            # SQLite keeps text as UTF-8: a path that is not (a name of other bytes) is not kept,
            # and its file is read again next time
            ready = {p: r for p, r in self._dirty.items() if r[2] <= cutoff and _is_utf8(p)}
            if not ready:
                return
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with sqlite3.connect(self.db_path, timeout=30) as db:
                    _create(db)
                    db.executemany(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                        [(path, *row) for path, row in ready.items()],
                    )
            except sqlite3.OperationalError as exc:
                # the table only saves re-reading files: on a full disk the next run hashes them
                # again, and the run's own outcome (often a disk-full message naming the file it
                # could not write) must not be replaced by this one
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                return
            for path in ready:
                del self._dirty[path]


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _create(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS files ("
        "path TEXT PRIMARY KEY, inode INTEGER, size INTEGER, mtime_ns INTEGER, digest TEXT)"
    )
