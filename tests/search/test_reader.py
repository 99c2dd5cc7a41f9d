"""``search show`` reads a study with plain SQL (mlbuild/search/reader.py): what it reads must be
what Optuna's own storage reads, on SQLite and on PostgreSQL, for trials of every state."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import MlbuildError


def _fill(url: str) -> list[Any]:
    """A study of two objectives with a trial of each state, a categorical and a log param, an
    infinite value and user attributes; returns Optuna's own view of its trials."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=url, study_name="s", directions=["maximize", "minimize"])
    dists = {
        "lr": FloatDistribution(1e-4, 1.0, log=True),
        "depth": IntDistribution(1, 9, step=2),
        "kind": CategoricalDistribution(["a", None, 3, True]),
    }
    for i, kind in enumerate(["a", None, 3, True]):
        study.add_trial(
            create_trial(
                params={"lr": 10 ** -(i + 1), "depth": 2 * i + 1, "kind": kind},
                distributions=dists,
                values=[float(i), math.inf if i == 2 else -float(i)],
                user_attrs={"run_id": f"r{i}", "nested": {"k": [1, 2]}},
            )
        )
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "boom"}))
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"lr": 0.5},
            distributions={"lr": dists["lr"]},
            intermediate_values={0: 1.0},
        )
    )
    study.enqueue_trial({"lr": 0.01})
    running = study.ask()
    running.set_user_attr("run_id", "r-running")
    optuna.create_study(storage=url, study_name="other", direction="minimize").add_trial(
        create_trial(value=1.0)
    )
    return optuna.load_study(study_name="s", storage=url).get_trials()


def _same(url: str) -> None:
    from mlbuild.search.reader import read_study

    # Optuna itself would pick psycopg 3 for postgresql://; mlbuild names psycopg2
    stored = _fill(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    read = read_study(url, "s")
    assert [d.name for d in read.directions] == ["MAXIMIZE", "MINIMIZE"]
    got = read.get_trials()
    assert len(got) == len(stored) == 7
    for mine, theirs in zip(got, stored, strict=True):
        assert (mine.number, mine.state, mine.values, mine.params, mine.user_attrs) == (
            theirs.number,
            theirs.state,
            theirs.values,
            theirs.params,
            theirs.user_attrs,
        )
        assert mine.distributions == theirs.distributions
        assert (mine.datetime_start, mine.datetime_complete) == (
            theirs.datetime_start,
            theirs.datetime_complete,
        )
    assert read_study(url, "nope") is None


def test_a_study_reads_as_optuna_reads_it_on_sqlite(tmp_path: Path) -> None:
    _same(f"sqlite:///{tmp_path / 'search.db'}")


def test_a_study_reads_as_optuna_reads_it_on_postgresql(postgres: Any) -> None:
    _same(postgres.database())


def test_study_names_newest_first_and_by_prefix(tmp_path: Path) -> None:
    import optuna

    from mlbuild.search.reader import read_study_names

    url = f"sqlite:///{tmp_path / 'search.db'}"
    for name in ("toy.hpo.aaa", "toy.hpo.bbb", "toy.other.ccc"):
        optuna.create_study(storage=url, study_name=name).optimize(lambda t: 1.0, n_trials=1)
    assert read_study_names(url, "toy.hpo.") == ["toy.hpo.bbb", "toy.hpo.aaa"]


def test_a_schema_it_does_not_know_is_left_to_optuna(tmp_path: Path) -> None:
    """Another Optuna's schema is not guessed at: Optuna's storage opens it, and says why not."""
    from mlbuild.search.reader import read_study

    path = tmp_path / "search.db"
    _fill(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = 'v9.0.0.a'")
    with pytest.raises(MlbuildError) as caught:
        read_study(f"sqlite:///{path}", "s")
    assert caught.value.message.startswith(f"cannot open the search storage sqlite:///{path}: ")


@pytest.mark.parametrize("table", ["trials", "studies", "trial_values", "trial_params"])
def test_a_study_missing_a_table_is_named_damaged_and_left_as_it_is(
    tmp_path: Path, table: str
) -> None:
    """A read never makes a table anew: the study would read as one without trials."""
    from mlbuild.search.reader import read_study

    path = tmp_path / "search.db"
    _fill(f"sqlite:///{path}")
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE {table}")
    with pytest.raises(MlbuildError) as caught:
        read_study(f"sqlite:///{path}", "s")
    assert caught.value.message == (
        f"cannot read the search storage sqlite:///{path}: no such table: {table}"
    )
    with sqlite3.connect(path) as db:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert table not in tables


def test_a_file_that_is_no_database_is_refused_without_a_traceback(tmp_path: Path) -> None:
    from mlbuild.search.reader import read_study

    path = tmp_path / "search.db"
    path.write_bytes(b"\xff" * 4096)
    with pytest.raises(MlbuildError) as caught:
        read_study(f"sqlite:///{path}", "s")
    assert "search storage" in caught.value.message


def test_the_study_read_is_read_only_and_answers_as_the_stored_one(tmp_path: Path) -> None:
    """The read study's storage holds the trials as read (mlbuild/search/frozen.py): what Optuna
    computes from it is what it computes from the stored study, and nothing can be written."""
    import optuna

    from mlbuild.search.reader import read_study

    url = f"sqlite:///{tmp_path / 'search.db'}"
    _fill(url)
    stored = optuna.load_study(study_name="s", storage=url)
    read = read_study(url, "s")
    assert read.study_name == "s"
    assert [t.number for t in read.best_trials] == [t.number for t in stored.best_trials]
    done = optuna.trial.TrialState.COMPLETE
    assert [t.number for t in read.get_trials(states=(done,))] == [0, 1, 2, 3]
    copied = read.get_trials()  # a copy: changing it changes nothing read later
    copied[0].user_attrs["run_id"] = "changed"
    assert read.get_trials()[0].user_attrs["run_id"] == "r0"
    assert read.trials[4].user_attrs == {"error": "boom"}
    with pytest.raises(NotImplementedError, match="read-only"):
        read.add_trial(optuna.trial.create_trial(values=[1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="read-only"):
        read.enqueue_trial({"lr": 0.1})
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 7


def test_a_sqlite_path_with_uri_characters_is_read(tmp_path: Path) -> None:
    """SQLite is opened read-only by URI: a space or a non-ASCII letter in the path is no
    problem to its escaping."""
    from mlbuild.search.reader import read_study

    folder = tmp_path / "a b é"
    folder.mkdir()
    url = f"sqlite:///{folder / 'search.db'}"
    _fill(url)
    read = read_study(url, "s")
    assert len(read.trials) == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a b é"]
    assert read_study(url, "nope") is None
