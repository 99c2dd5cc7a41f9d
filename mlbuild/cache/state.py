"""The state table: path → (inode, size, ctime_ns) → content hash; unchanged files are not re-read.

The stamp is the ctime, not the mtime: anyone can set a file's mtime back (``touch -d``, ``cp -p``,
``rsync -t --inplace``, ``os.utime``), so a file rewritten in place with its size kept and its
mtime restored looked unchanged and its old hash answered for new content. Every write, and every
change of the mtime, sets the ctime to now, which no user can set back. (The ``mtime_ns`` column
and ``dir_files``' ``mtime_ns`` columns hold it, and a listing hashes it: a row of an older
mlbuild, which held the mtime, matches only a file whose ctime equals that mtime — one not
changed since it was written, which the row describes.)

Stored in SQLite (stdlib, no server). Three tables:

- ``files``: single files (a step's file deps and outputs, the recipe), loaded whole on first use:
  a few thousand rows load in a millisecond or two, far cheaper than one query per file;
- ``dir_files``: the files of a directory hashed as a whole, keyed by (directory, relpath) and read
  one directory at a time, in one query, only when that directory changed: a dataset of 100,000
  files is not loaded by a command that looks up the recipe;
- ``dirs``: per directory, the hash of its listing (every file's relpath, inode, size, ctime and
  executable bit) and the manifest digest it had. A directory whose listing hashes the same has
  every file's stat unchanged, so each file's row would give the digest it gave: the same trust
  as the rows, taken once instead of 100,000 times. Kept only when every file in it was old
  enough to trust (:mod:`mlbuild.racy`) when it was hashed.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from mlbuild import atomic, racy

_Row = tuple[int, int, int, str]
# (listing hash, manifest digest, total size)
DirMemo = tuple[str, str, int]


class StateTable:
    """Remembered file hashes keyed by path; safe to share between threads of one process.

    Rows are kept in memory as they are recorded; :meth:`save` writes the ones old enough to trust.
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._rows: dict[str, _Row] | None = None
        self._dirty: dict[str, _Row] = {}
        self._dir_rows: dict[str, dict[str, _Row]] = {}
        self._dirty_dir_rows: dict[str, dict[str, _Row]] = {}
        self._memos: dict[str, DirMemo] | None = None
        self._dirty_memos: dict[str, DirMemo] = {}
        self._moved: set[str] = set()
        self._damaged = False  # read as empty; removed, to be made anew, by the next save
        self._lock = threading.Lock()

    def _query(self, sql: str, args: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
        if atomic.planted_file(self.db_path):  # SQLite would follow it and write in place
            self._damaged = True  # its name removed, a table made anew, by the next save
            return []
        if not self.db_path.exists():
            return []
        try:
            with sqlite3.connect(self.db_path, timeout=30) as db:
                _create(db)
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            if _busy(exc):
                raise
            self._damaged = True  # not a database, or tables of another shape
            return []

    def _load(self) -> dict[str, _Row]:
        with self._lock:
            if self._rows is None:
                rows: dict[str, _Row] = {}
                try:
                    for path, inode, size, mtime, digest in self._query("SELECT * FROM files"):
                        rows[str(path)] = (int(inode), int(size), int(mtime), str(digest))  # type: ignore[call-overload]
                except (ValueError, TypeError):
                    self._damaged, rows = True, {}
                self._rows = rows
            return self._rows

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        row = self._load().get(path)
        if row is not None and row[:3] == (st.st_ino, st.st_size, st.st_ctime_ns):
            return row[3]
        return None

    def lookup_many(self, items: Sequence[tuple[str, str, os.stat_result]]) -> list[str | None]:
        """:meth:`lookup` of each ``(path, _, stat)`` of ``items``, in one pass."""
        return _match(self._load(), items)

    def record(self, path: str, st: os.stat_result, digest: str) -> None:
        row = (st.st_ino, st.st_size, st.st_ctime_ns, digest)
        rows = self._load()
        with self._lock:
            rows[path] = row
            self._dirty[path] = row

    # ---- directories hashed as a whole ---------------------------------------------------------

    def dir_memo(self, directory: str) -> DirMemo | None:
        """What directory ``directory`` last hashed to, with the hash of its listing then."""
        with self._lock:
            if self._memos is None:
                try:
                    self._memos = {
                        str(path): (str(listing), str(digest), int(size))  # type: ignore[call-overload]
                        for path, listing, digest, size in self._query("SELECT * FROM dirs")
                    }
                except (ValueError, TypeError):
                    self._damaged, self._memos = True, {}
            return self._memos.get(directory)

    def record_dir_memo(self, directory: str, memo: DirMemo, *, trusted: bool) -> None:
        """Remember ``memo`` for this process, and to save when ``trusted`` (every file of the
        listing was old enough to trust when it was hashed); an untrusted one is forgotten on
        disk, so the next process checks the files' rows instead."""
        self.dir_memo(directory)
        with self._lock:
            assert self._memos is not None
            self._memos[directory] = memo
            self._dirty_memos[directory] = memo if trusted else ("", "", 0)

    def lookup_dir(
        self, directory: str, items: Sequence[tuple[str, str, os.stat_result]]
    ) -> list[str | None]:
        """:meth:`lookup` of each ``(relpath, _, stat)`` of directory ``directory``'s files: its
        rows read in one query, once per process."""
        with self._lock:
            rows = self._dir_rows.get(directory)
            if rows is None:
                try:
                    rows = {
                        str(rel): (int(inode), int(size), int(mtime), str(digest))  # type: ignore[call-overload]
                        for rel, inode, size, mtime, digest in self._query(
                            "SELECT rel, inode, size, mtime_ns, digest FROM dir_files "
                            "WHERE dir = ?",
                            (directory,),
                        )
                    }
                except (ValueError, TypeError):
                    self._damaged, rows = True, {}
                self._dir_rows[directory] = rows
        return _match(rows, items)

    def has_dir_rows(self, directory: str) -> bool:
        with self._lock:
            return bool(self._dir_rows.get(directory))

    def moved(self, directory: str) -> None:
        """The rows of ``directory``'s files by full path were moved to its own rows: the next
        save deletes them, so that loading the single files' rows no longer reads them."""
        with self._lock:
            self._moved.add(directory)

    def record_dir(self, directory: str, found: dict[str, tuple[os.stat_result, str]]) -> None:
        """Remember the digests of files of ``directory`` (by relpath) just hashed."""
        rows = {rel: (st.st_ino, st.st_size, st.st_ctime_ns, d) for rel, (st, d) in found.items()}
        with self._lock:
            self._dir_rows.setdefault(directory, {}).update(rows)
            self._dirty_dir_rows.setdefault(directory, {}).update(rows)

    def save(self) -> None:
        """Persist recorded rows, except those written too recently to trust (racy window)."""
        with self._lock:
            cutoff = racy.cutoff()
            # SQLite keeps text as UTF-8: a path that is not (a name of other bytes) is not kept,
            # and its file is read again next time
            ready = {p: r for p, r in self._dirty.items() if r[2] <= cutoff and _is_utf8(p)}
            in_dirs = [
                (directory, rel, *row)
                for directory, rows in self._dirty_dir_rows.items()
                if _is_utf8(directory)
                for rel, row in rows.items()
                if row[2] <= cutoff and _is_utf8(rel)
            ]
            memos = {d: m for d, m in self._dirty_memos.items() if _is_utf8(d)}
            # '0' follows '/': the range holds exactly the paths under the directory
            moved = [(f"{d}/", f"{d}0") for d in self._moved if _is_utf8(d)]
            if not (ready or in_dirs or memos or moved):
                return
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            if self._damaged or atomic.planted_file(self.db_path):
                # derived data: what it held is hashed again; a planted name (a symlink, a
                # hardlink) is removed, never written through
                with contextlib.suppress(OSError):
                    self.db_path.unlink()
                self._damaged = False
            if atomic.planted_file(self.db_path):  # a folder: not ours to remove
                return
            try:
                with sqlite3.connect(self.db_path, timeout=30) as db:  # one transaction
                    _create(db)
                    db.executemany("DELETE FROM files WHERE path >= ? AND path < ?", moved)
                    db.executemany(
                        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                        [(path, *row) for path, row in ready.items()],
                    )
                    db.executemany("INSERT OR REPLACE INTO dir_files VALUES (?,?,?,?,?,?)", in_dirs)
                    db.executemany("DELETE FROM dirs WHERE path = ?", [(d,) for d in memos])
                    db.executemany(
                        "INSERT INTO dirs VALUES (?, ?, ?, ?)",
                        [(d, *m) for d, m in memos.items() if m[0]],
                    )
            except sqlite3.OperationalError as exc:
                # the table only saves re-reading files: on a full disk the next run hashes them
                # again, and the run's own outcome (often a disk-full message naming the file it
                # could not write) must not be replaced by this one
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                return
            except sqlite3.DatabaseError:  # damaged since it was read: made anew next time
                with contextlib.suppress(OSError):
                    self.db_path.unlink()
                return
            for path in ready:
                del self._dirty[path]
            for directory, rel, *_ in in_dirs:
                del self._dirty_dir_rows[directory][rel]
            self._dirty_memos.clear()
            self._moved.clear()


def _match(
    rows: dict[str, _Row], items: Sequence[tuple[str, str, os.stat_result]]
) -> list[str | None]:
    found: list[str | None] = []
    add = found.append
    get = rows.get
    for path, _, st in items:
        row = get(path)
        if (
            row is not None
            and row[0] == st.st_ino
            and row[1] == st.st_size
            and row[2] == st.st_ctime_ns
        ):
            add(row[3])
        else:
            add(None)
    return found


def _busy(exc: sqlite3.Error) -> bool:
    """Another process holds the table (past the timeout): not damage, not ours to remove."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


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
    db.execute(
        "CREATE TABLE IF NOT EXISTS dir_files (dir TEXT, rel TEXT, inode INTEGER, size INTEGER, "
        "mtime_ns INTEGER, digest TEXT, PRIMARY KEY (dir, rel)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS dirs ("
        "path TEXT PRIMARY KEY, listing TEXT, digest TEXT, size INTEGER)"
    )
