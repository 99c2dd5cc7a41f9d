"""A SQLite study holding a row Optuna would not write (a damaged or hand-edited file) is named as
unreadable by ``search show``'s reader, never an internal error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlbuild.errors import MlbuildError
from mlbuild.search.reader import read_study

DAMAGES = {
    "distribution not JSON": "UPDATE trial_params SET distribution_json = '{bad'",
    "distribution a list": "UPDATE trial_params SET distribution_json = '[1, 2]'",
    "param value not a number": "UPDATE trial_params SET param_value = 'abc'",
    "objective value not a number": "UPDATE trial_values SET value = 'zz'",
    "unknown state": "UPDATE trials SET state = 'WEIRD'",
    "start not a date": "UPDATE trials SET datetime_start = 'not a date'",
    "complete without a value": "DELETE FROM trial_values",
}


@pytest.fixture
def study(tmp_path: Path) -> str:
    import optuna

    url = f"sqlite:///{tmp_path / 'search.db'}"
    made = optuna.create_study(study_name="s", storage=url, direction="maximize")
    made.optimize(lambda t: t.suggest_float("lr", 0.0, 1.0), n_trials=2)
    return url


@pytest.mark.parametrize("sql", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_row_is_named_not_a_crash(study: str, sql: str) -> None:
    assert read_study(study, "s") is not None  # sound before
    with sqlite3.connect(study.removeprefix("sqlite:///")) as db:
        db.execute(sql)
    with pytest.raises(MlbuildError) as caught:
        read_study(study, "s")
    assert caught.value.message.startswith(
        f"cannot read the search storage {study}: study 's' holds a value Optuna does not write ("
    )
