"""One worker at a time decides whether the study needs another trial and creates it.

Workers share a study through its storage. Each asks "does the study hold ``n_trials`` yet?"
before it starts a trial; two workers asking at the same moment would both see one missing and
both start one, and the study would end with more trials than declared (Optuna's own
``MaxTrialsCallback`` has this race). So the question and the creation of the trial happen under
a lock of the storage's, held from the question until the trial exists in the storage as RUNNING
— the objective releases it first thing — never while a trial runs:

- PostgreSQL: a session advisory lock (``pg_advisory_lock``) keyed by the study's name, on a
  connection of its own; the server drops it when the worker's connection goes, even by SIGKILL.
- SQLite: ``flock`` on a file beside the database, one per study; the kernel drops it when the
  worker dies.
- Any other database: no lock; the count can be exceeded by at most the number of workers − 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class TrialClaim:
    """The lock one worker holds while it claims a study's next trial; :meth:`release` is
    idempotent and safe from the objective's thread."""

    def __init__(self, url: str, study_name: str) -> None:
        self._held = False
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._conn: Any = None
        digest = hashlib.blake2b(study_name.encode(), digest_size=8).digest()
        self._key = int.from_bytes(digest) - (1 << 63)  # a signed bigint, as PostgreSQL takes
        if url.startswith("sqlite:///"):
            path = Path(f"{url.removeprefix('sqlite:///')}.claim-{digest.hex()}")
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        elif url.startswith(("postgresql", "postgres")):
            import sqlalchemy

            from mlbuild.search.study import engine_url

            engine = sqlalchemy.create_engine(engine_url(url), isolation_level="AUTOCOMMIT")
            self._conn = engine.connect()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block (or until :meth:`release`), then release it."""
        self._acquire()
        try:
            yield
        finally:
            self.release()

    def _acquire(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        elif self._conn is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self._key})
        with self._mutex:
            self._held = True

    def release(self) -> None:
        with self._mutex:
            if not self._held:
                return
            self._held = False
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        elif self._conn is not None:
            import sqlalchemy

            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            self._conn.close()
            self._conn.engine.dispose()
            self._conn = None
