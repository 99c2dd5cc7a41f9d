"""SQLAlchemy engines for the run store's URLs, and transactions that retry on contention.

SQLite: WAL journal (readers never block the writer), a 60 s busy timeout, and ``BEGIN
IMMEDIATE`` for writes — a deferred transaction that upgrades to a write lock can fail at once
with "database is locked" whatever the timeout, so writers take the lock up front. PostgreSQL:
``postgresql://`` URLs use psycopg2 (it imports in ~30 ms where psycopg 3 takes ~170 ms, and every
``mlbuild run`` pays it); ``postgresql+psycopg://`` picks psycopg 3. A serialization failure or
deadlock is retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from mlbuild.errors import StoreError
from mlbuild.extras import MissingExtraError, install_command, missing_extra
from mlbuild.masking import MASK, without_password

T = TypeVar("T")
_RETRIES = 20
# SQLSTATEs worth retrying: serialization failure, deadlock
_RETRY_STATES = {"40001", "40P01"}


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///PATH`` or ``postgresql://…``)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"run store URL {url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"run store URL {display_url(url)} names {parsed.get_backend_name()!r}; "
            "mlbuild stores runs in SQLite or PostgreSQL"
        )
    try:
        return sa.create_engine(parsed, pool_size=2, max_overflow=2)
    except ModuleNotFoundError as exc:
        if parsed.drivername != "postgresql+psycopg2":  # a driver the user chose, not ours
            raise MissingExtraError(
                f"the run store URL names the driver {parsed.drivername}, whose package "
                f"'{exc.name}' is not installed; install it, or use postgresql:// (psycopg2: "
                f"`{install_command('postgres')}`)"
            ) from None
        raise missing_extra("postgres", "a PostgreSQL run store", "psycopg2") from None


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get("mlbuild_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def display_url(url: str) -> str:
    """``url`` as messages may show it: never with its password."""
    return without_password(url, mask=MASK)


def transact(engine: sa.Engine, work: Callable[[sa.Connection], T], *, write: bool) -> T:
    """Run ``work`` in one transaction, retrying when another writer got in the way."""
    for attempt in range(_RETRIES):
        try:
            with engine.connect() as conn:
                if write:  # changes this connection in place (SQLAlchemy 2)
                    conn.execution_options(mlbuild_write=True)
                with conn.begin():
                    return work(conn)
        except sa.exc.OperationalError as exc:
            if not _is_contention(exc) or attempt == _RETRIES - 1:
                raise StoreError(_describe(engine, exc)) from None
        except sa.exc.DBAPIError as exc:
            if _sqlstate(exc) not in _RETRY_STATES or attempt == _RETRIES - 1:
                raise
        time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))  # noqa: S311
    raise AssertionError("unreachable")


def _is_contention(exc: sa.exc.OperationalError) -> bool:
    return "database is locked" in str(exc.orig) or _sqlstate(exc) in _RETRY_STATES


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    # psycopg 3 names it sqlstate, psycopg2 pgcode
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state if isinstance(state, str) else None


def _describe(engine: sa.Engine, exc: sa.exc.OperationalError) -> str:
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    where = display_url(engine.url.render_as_string(hide_password=False))
    return (
        f"run store {where} is unusable: {first}; check the server (or the file) and the "
        "URL in MLBUILD_STORE"
    )
