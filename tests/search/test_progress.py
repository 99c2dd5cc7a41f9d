"""A worker's count of a study's trials (mlbuild/search/progress.py) is one SQL query on Optuna's
tables instead of Optuna's reading of every trial; it must say what Optuna's reading says, for
every state, for retries of dead workers' trials and of interrupted ones, and for one study
among several in a storage, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.search.progress import Progress, StudyCounter, optuna_progress
from mlbuild.search.study import open_storage, optuna_module
from mlbuild.search.trial import RETRY_OF


def _study(storage: Any, name: str) -> Any:
    optuna = optuna_module()
    return optuna.create_study(storage=storage, study_name=name, direction="maximize")


def _fill(study: Any) -> None:
    """Trials in every state: 3 complete (one of them a dead worker's retry, one an interrupted
    trial's), 1 pruned, 2 failed, 2 running (one a retry), 1 waiting (an interrupted trial
    enqueued again)."""
    optuna = optuna_module()
    storage = study._storage
    create = optuna.trial.create_trial
    study.add_trial(create(value=1.0))
    study.add_trial(create(value=2.0, system_attrs={"failed_trial": 4}))
    study.add_trial(create(value=3.0, user_attrs={RETRY_OF: 5}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    study.ask()
    retry = study.ask()
    storage.set_trial_system_attr(retry._trial_id, "failed_trial", 5)
    study.enqueue_trial({}, user_attrs={RETRY_OF: 3})


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_sql_count_says_what_optunas_reading_says(
    backend: str, tmp_path: Path, postgres: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite" else postgres.database()
    storage = open_storage(url, workers=False)
    empty, study, other = (_study(storage, n) for n in ("empty", "ours", "other"))
    assert StudyCounter(storage, empty).progress() == Progress(done=0, running=0, waiting=0)
    _fill(study)
    _fill(other)  # another study's trials are not this one's
    other.add_trial(optuna_module().trial.create_trial(value=9.0))
    counter = StudyCounter(storage, study)
    # finished 6, less 4 retries (two finished, one running, one waiting); counted afresh
    assert counter.progress() == Progress(done=2, running=2, waiting=1)
    assert counter.progress() == optuna_progress(study)
    assert StudyCounter(storage, other).progress() == optuna_progress(other)
    study.add_trial(optuna_module().trial.create_trial(value=4.0))
    assert counter.progress() == Progress(done=3, running=2, waiting=1)
    assert counter.progress() == optuna_progress(study)
    storage.engine.dispose()


def test_a_schema_it_does_not_know_is_counted_through_optuna(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", workers=False)
    study = _study(storage, "ours")
    _fill(study)
    with storage.engine.begin() as db:  # as a future Optuna's migration would leave it
        import sqlalchemy

        db.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = 'v9.9.9'"))
    counter = StudyCounter(storage, study)
    assert counter._id is None
    assert counter.progress() == Progress(done=2, running=2, waiting=1)


def test_a_waiting_worker_wakes_when_the_sqlite_study_changes(tmp_path: Path) -> None:
    """A worker waiting for another's last trial glances at the SQLite files between its looks
    at the study, and looks again as soon as they change (the other's trial finished), instead
    of sleeping out the interval."""
    import sqlite3
    import threading

    from mlbuild.search.runner import _pause

    database = tmp_path / "study.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE trials (state TEXT)")
    db.close()
    waiter = threading.Thread(target=_pause, args=(f"sqlite:///{database}", 120.0))
    waiter.start()
    time.sleep(0.3)
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO trials VALUES ('COMPLETE')")
    db.close()
    waiter.join(60)
    assert not waiter.is_alive(), "the waiting worker slept on after the study changed"
