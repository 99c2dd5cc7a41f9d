"""A read-only copy of a stored study, for ``search show`` and ``dashboard``'s choice of study.

Opening Optuna's RDB storage costs more than reading a study of 1,000 trials: it imports its ORM
models, runs Alembic's version check and creates any missing tables (bench/RESULTS.md, issue
11). Showing a study writes nothing, so this module reads Optuna's tables with a few SQL queries
through SQLAlchemy core (the same text on SQLite and PostgreSQL) and puts the trials into an
in-memory study, which Optuna's own reports, importances and plots take as they take the stored
one. The tables are read only when the database says it holds the schema this was written for
(:data:`SCHEMA`); any other version is read through Optuna's storage, which knows it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any

from mlbuild.errors import MlbuildError
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
    """Study ``name`` of the storage at ``url`` as an in-memory ``optuna.Study``, or ``None``."""
    engine = _engine(url)
    if engine is None:
        return load_study(open_storage(url, workers=False), name)
    try:
        with engine.connect() as db:
            return _read(db, name)
    except _Unreadable:
        return load_study(open_storage(url, workers=False), name)
    except Exception as exc:  # SQLAlchemy's: a server that does not answer, a locked file
        raise MlbuildError(
            f"cannot read the search storage {display_url(url)}: {_first_line(exc)}"
        ) from None
    finally:
        engine.dispose()


def read_study_names(url: str, prefix: str) -> list[str]:
    """The names of the stored studies starting with ``prefix``, newest first."""
    from mlbuild.search.study import study_names

    engine = _engine(url)
    if engine is None:
        return study_names(open_storage(url, workers=False), prefix)
    from sqlalchemy import text

    try:
        with engine.connect() as db:
            _check_schema(db)
            rows = db.execute(
                text(
                    "SELECT s.study_name, MIN(t.datetime_start) FROM studies s "
                    "LEFT JOIN trials t ON t.study_id = s.study_id GROUP BY s.study_name"
                )
            ).all()
    except _Unreadable:
        return study_names(open_storage(url, workers=False), prefix)
    except Exception as exc:
        raise MlbuildError(
            f"cannot read the search storage {display_url(url)}: {_first_line(exc)}"
        ) from None
    finally:
        engine.dispose()
    found = [(str(n), s) for n, s in rows if str(n).startswith(prefix)]
    found.sort(key=lambda r: (r[1] is not None, str(r[1] or "")), reverse=True)
    return [n for n, _ in found]


class _Unreadable(Exception):
    """The database is not Optuna's schema as this module knows it."""


def _engine(url: str) -> Any | None:
    """A SQLAlchemy engine for ``url``; ``None`` where Optuna's storage must open it (a driver
    this module does not know, a SQLite file that is not there yet)."""
    from pathlib import Path

    from mlbuild.search.study import engine_url

    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            return None
    elif not url.startswith(("postgresql", "postgres")):
        return None
    from sqlalchemy import create_engine

    try:
        return create_engine(engine_url(url))
    except Exception:  # a missing driver, a malformed URL: Optuna's storage says which
        return None


def _check_schema(db: Any) -> None:
    from sqlalchemy import text

    try:
        version = db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        db.rollback()
        raise _Unreadable from exc
    if version != SCHEMA:
        raise _Unreadable


def _read(db: Any, name: str) -> Any | None:
    from sqlalchemy import DateTime, Float, Integer, String, text

    _check_schema(db)
    study_id = db.execute(
        text("SELECT study_id FROM studies WHERE study_name = :name"), {"name": name}
    ).scalar()
    if study_id is None:
        return None
    sid = {"sid": study_id}
    directions = [
        str(d).lower()
        for (d,) in db.execute(
            text("SELECT direction FROM study_directions WHERE study_id = :sid ORDER BY objective"),
            sid,
        )
    ]
    trials = db.execute(
        text(
            "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
            "WHERE study_id = :sid ORDER BY number"
        ).columns(
            trial_id=Integer,
            number=Integer,
            state=String,
            datetime_start=DateTime,
            datetime_complete=DateTime,
        ),
        sid,
    ).all()
    values: dict[int, dict[int, float]] = defaultdict(dict)
    for trial_id, objective, value, kind in db.execute(
        text(_VALUES).columns(trial_id=Integer, objective=Integer, value=Float, value_type=String),
        sid,
    ):
        values[trial_id][objective] = _value(value, kind)
    params: dict[int, list[tuple[str, float, str]]] = defaultdict(list)
    for trial_id, key, value, dist in db.execute(
        text(_PARAMS),
        sid,
    ):
        params[trial_id].append((key, float(value), dist))
    attrs: dict[int, dict[str, Any]] = defaultdict(dict)
    for trial_id, key, value in db.execute(
        text(_ATTRS),
        sid,
    ):
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
    optuna = optuna_module()
    from optuna.distributions import json_to_distribution
    from optuna.trial import FrozenTrial, TrialState

    study = optuna.create_study(study_name=name, directions=directions)
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
    study.add_trials(frozen)
    return study


def _value(value: float | None, kind: str) -> float:
    if kind == "INF_POS":
        return math.inf
    if kind == "INF_NEG":
        return -math.inf
    return float(value) if value is not None else math.nan


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
