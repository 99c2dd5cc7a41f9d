"""A read-only copy of a stored study, for ``search show`` and ``dashboard``'s choice of study.

Opening Optuna's RDB storage costs more than reading a study of 1,000 trials: it imports its ORM
models, runs Alembic's version check and creates any missing tables (bench/RESULTS.md, issue
11). Showing a study writes nothing, so this module reads Optuna's tables with a few SQL queries
(the same text on SQLite, through the standard library's driver, and on PostgreSQL, through
SQLAlchemy core) and puts the trials into a read-only study (:mod:`mlbuild.search.frozen`), which
Optuna's own reports, importances and plots take as they take the stored one. The tables are
read only when the database says it holds the schema this was written for
(:data:`SCHEMA`); any other version is read through Optuna's storage, which knows it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlbuild.errors import MlbuildError
from mlbuild.search.frozen import frozen_study
from mlbuild.search.study import display_url, load_study, open_storage, optuna_module

SCHEMA = "v3.2.0.a"  # alembic_version of Optuna's RDB schema since Optuna 3.2

# the study's trials, each table read once; the study's id is a bound parameter
_VALUES = (
    "SELECT trial_id, objective, value, value_type FROM trial_values "
    "WHERE trial_id IN (SELECT trial_id FROM trials WHERE study_id = :sid)"
)
_PARAMS = (
    "SELECT trial_id, param_name, param_value, distribution_json FROM trial_params "
    "WHERE trial_id IN (SELECT trial_id FROM trials WHERE study_id = :sid) ORDER BY param_id"
)
_ATTRS = (
    'SELECT trial_id, "key", value_json FROM trial_user_attributes '
    "WHERE trial_id IN (SELECT trial_id FROM trials WHERE study_id = :sid)"
)


def read_study(url: str, name: str) -> Any | None:
    """Study ``name`` of the storage at ``url`` as a read-only ``optuna.Study``, or ``None``."""
    try:
        with _connected(url) as query:
            if query is None:
                return load_study(open_storage(url, workers=False), name)
            try:
                return _read(query, name)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # a row Optuna would not have written (a damaged or edited file): named, never
                # an internal error
                raise MlbuildError(
                    f"cannot read the search storage {display_url(url)}: study '{name}' holds "
                    f"a value Optuna does not write ({type(exc).__name__}: {_first_line(exc)})"
                ) from None
    except _Unreadable:
        return load_study(open_storage(url, workers=False), name)


def read_study_names(url: str, prefix: str) -> list[str]:
    """The names of the stored studies starting with ``prefix``, newest first."""
    from mlbuild.search.study import study_names

    try:
        with _connected(url) as query:
            if query is None:
                return study_names(open_storage(url, workers=False), prefix)
            _check_schema(query)
            rows = query(
                "SELECT s.study_name, MIN(t.datetime_start) FROM studies s "
                "LEFT JOIN trials t ON t.study_id = s.study_id GROUP BY s.study_name",
                {},
                {},
            )
    except _Unreadable:
        return study_names(open_storage(url, workers=False), prefix)
    found = [(str(n), s) for n, s in rows if str(n).startswith(prefix)]
    found.sort(key=lambda r: (r[1] is not None, str(r[1] or "")), reverse=True)
    return [n for n, _ in found]


class _Unreadable(Exception):
    """The database is not Optuna's schema as this module knows it."""


# runs one query: (SQL text, its bound parameters, {column: "datetime" | "float"}) → its rows
Query = Callable[[str, dict[str, Any], dict[str, str]], list[tuple[Any, ...]]]


@contextlib.contextmanager
def _connected(url: str) -> Iterator[Query | None]:
    """A query function on the database at ``url``; ``None`` where Optuna's storage must open
    it (a driver this module does not know, a SQLite file that is not there yet). A SQLite file
    is read with the standard library's driver, read-only: importing SQLAlchemy cost a fifth of
    ``search show`` (bench/RESULTS.md, issue 11)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            yield None
            return
        try:
            db = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise _cannot(url, exc) from None
        try:
            yield functools.partial(_sqlite_query, db)
        except sqlite3.Error as exc:
            raise _cannot(url, exc) from None
        finally:
            db.close()
        return
    engine = _engine(url)
    if engine is None:
        yield None
        return
    try:
        with engine.connect() as db:
            yield functools.partial(_sqlalchemy_query, db)
    except (_Unreadable, MlbuildError):
        raise
    except Exception as exc:  # SQLAlchemy's: a server that does not answer
        raise _cannot(url, exc) from None
    finally:
        engine.dispose()


def _cannot(url: str, exc: BaseException) -> MlbuildError:
    return MlbuildError(f"cannot read the search storage {display_url(url)}: {_first_line(exc)}")


def _sqlite_query(
    db: sqlite3.Connection, sql: str, params: dict[str, Any], kinds: dict[str, str]
) -> list[tuple[Any, ...]]:
    """The rows of ``sql``; columns of ``kinds`` converted as SQLAlchemy's types convert them
    (SQLite keeps a datetime as ISO text)."""
    try:
        cursor = db.execute(sql, params)
    except sqlite3.OperationalError as exc:
        # no Optuna schema at all (an empty file): Optuna's storage says what it is; one table
        # of the schema missing is a damaged study, named — never made anew by a read
        if str(exc) == "no such table: alembic_version":
            raise _Unreadable from exc
        raise
    rows = cursor.fetchall()
    if not kinds:
        return rows
    names = [d[0] for d in cursor.description]
    convert = [_CONVERT.get(kinds.get(n, "")) for n in names]
    return [
        tuple(v if c is None or v is None else c(v) for c, v in zip(convert, row, strict=True))
        for row in rows
    ]


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "datetime": lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(str(v)),
    "float": float,
}


def _sqlalchemy_query(
    db: Any, sql: str, params: dict[str, Any], kinds: dict[str, str]
) -> list[tuple[Any, ...]]:
    from sqlalchemy import DateTime, Float, text

    types = {"datetime": DateTime, "float": Float}
    statement: Any = text(sql)
    if kinds:
        statement = statement.columns(**{n: types[k] for n, k in kinds.items()})
    try:
        return [tuple(row) for row in db.execute(statement, params).all()]
    except Exception as exc:
        if "alembic_version" in sql:
            db.rollback()
            raise _Unreadable from exc
        raise


def _engine(url: str) -> Any | None:
    """A SQLAlchemy engine for a PostgreSQL ``url``; ``None`` for any other database, or where
    the driver is missing or the URL malformed (Optuna's storage says which)."""
    from mlbuild.search.study import engine_url

    if not url.startswith(("postgresql", "postgres")):
        return None
    from sqlalchemy import create_engine

    try:
        return create_engine(engine_url(url))
    except Exception:
        return None


def _check_schema(query: Query) -> None:
    rows = query("SELECT version_num FROM alembic_version", {}, {})
    if [tuple(r) for r in rows] != [(SCHEMA,)]:
        raise _Unreadable


def _read(query: Query, name: str) -> Any | None:
    _check_schema(query)
    found = query("SELECT study_id FROM studies WHERE study_name = :name", {"name": name}, {})
    if not found:
        return None
    sid = {"sid": found[0][0]}
    directions = [
        str(d).lower()
        for (d,) in query(
            "SELECT direction FROM study_directions WHERE study_id = :sid ORDER BY objective",
            sid,
            {},
        )
    ]
    trials = query(
        "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
        "WHERE study_id = :sid ORDER BY number",
        sid,
        {"datetime_start": "datetime", "datetime_complete": "datetime"},
    )
    values: dict[int, dict[int, float]] = defaultdict(dict)
    for trial_id, objective, value, kind in query(_VALUES, sid, {"value": "float"}):
        values[trial_id][objective] = _value(value, kind)
    params: dict[int, list[tuple[str, float, str]]] = defaultdict(list)
    for trial_id, key, value, dist in query(_PARAMS, sid, {}):
        params[trial_id].append((key, float(value), dist))
    attrs: dict[int, dict[str, Any]] = defaultdict(dict)
    for trial_id, key, value in query(_ATTRS, sid, {}):
        attrs[trial_id][key] = json.loads(value)
    return _study(name, directions, trials, values, params, attrs)


def _study(
    name: str,
    directions: list[str],
    trials: list[Any],
    values: dict[int, dict[int, float]],
    params: dict[int, list[tuple[str, float, str]]],
    attrs: dict[int, dict[str, Any]],
) -> Any:
    optuna_module()
    from optuna.distributions import json_to_distribution
    from optuna.trial import FrozenTrial, TrialState

    dists: dict[str, Any] = {}  # one distribution object per JSON text: most trials share them
    frozen = []
    for trial_id, number, state, started, completed in trials:
        own = values.get(trial_id)
        distributions = {}
        external = {}
        for key, internal, dist_json in params.get(trial_id, []):
            dist = dists.get(dist_json) or dists.setdefault(
                dist_json, json_to_distribution(dist_json)
            )
            distributions[key] = dist
            external[key] = dist.to_external_repr(internal)
        if TrialState[state] is TrialState.COMPLETE and len(own or ()) != len(directions):
            raise ValueError(f"trial {number} is complete without a value per objective")
        frozen.append(
            FrozenTrial(
                number=number,
                state=TrialState[state],
                value=None,
                values=[own[i] for i in sorted(own)] if own else None,
                datetime_start=started,
                datetime_complete=completed,
                params=external,
                distributions=distributions,
                user_attrs=attrs.get(trial_id, {}),
                system_attrs={},
                intermediate_values={},
                trial_id=trial_id,
            )
        )
    return frozen_study(name, directions, frozen)


def _value(value: float | None, kind: str) -> float:
    if kind == "INF_POS":
        return math.inf
    if kind == "INF_NEG":
        return -math.inf
    return float(value) if value is not None else math.nan


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
