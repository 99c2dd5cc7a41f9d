"""The run store's contract (mlbuild/store/base.py), checked on every backend: a SQLite file and
a real PostgreSQL server. Each test reads as one clause of the contract."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from mlbuild.errors import NotFoundError, StoreError, UsageError
from mlbuild.store import (
    Artifact,
    Condition,
    RunQuery,
    RunStatus,
    RunStore,
    StepEntry,
    open_store,
    parse_condition,
    parse_tag_condition,
)
from mlbuild.store.engine import make_engine
from mlbuild.store.schema import LATEST, migrate, run_steps, runs
from mlbuild.store.sql import _run_row
from tests.conftest import CHILD_ENV, REPO
from tests.store.factory import finish, make_run, tmp_records


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/runs.db"
    server = request.getfixturevalue("postgres")
    database: str = server.database()
    return database


@pytest.fixture
def store(url: str) -> Iterator[RunStore]:
    opened = open_store(url)
    yield opened
    opened.close()


def query(**fields: object) -> RunQuery:
    return RunQuery(**fields)  # type: ignore[arg-type]


def param(text: str) -> Condition:
    return parse_condition(text, "--param")


def metric(text: str) -> Condition:
    return parse_condition(text, "--metric")


def test_a_run_is_running_from_its_start_and_complete_when_finished(store: RunStore) -> None:
    run = make_run(tags={"team": "vision"}, notes="first try")
    store.start_run(run)
    assert store.get_run(run.id).status is RunStatus.RUNNING
    store.finish_run(finish(run))
    got = store.get_run(run.id)
    assert got == finish(run, heartbeat=run.started)
    assert got.duration == 1.0
    assert got.tags == {"team": "vision"} and got.notes == "first try"


def test_a_run_is_found_by_a_unique_prefix_of_its_id(store: RunStore) -> None:
    run = make_run(id="abcdef0123456789abcdef0123456789")
    store.start_run(run)
    assert store.get_run("abcdef01").id == run.id
    assert store.get_run("ABCDEF").id == run.id


def test_an_unknown_id_is_an_error_that_suggests_the_nearest(store: RunStore) -> None:
    store.start_run(make_run(id="abcdef0123456789abcdef0123456789"))
    with pytest.raises(NotFoundError) as caught:
        store.get_run("abcdef02")
    assert caught.value.message == (
        f"no run 'abcdef02' in the run store {store.url}; did you mean 'abcdef01'? "
        "(`mlbuild runs list` shows the recent runs)"
    )
    assert caught.value.exit_code == 2


def test_a_short_or_ambiguous_prefix_is_refused(store: RunStore) -> None:
    store.start_run(make_run(id="abcd" + "1" * 28))
    store.start_run(make_run(id="abcd" + "2" * 28))
    with pytest.raises(NotFoundError, match="run id 'abc' is too short; give at least 4"):
        store.get_run("abc")
    with pytest.raises(NotFoundError) as caught:
        store.get_run("abcd")
    assert caught.value.message == (
        "run id 'abcd' is ambiguous: it starts abcd11111111, abcd22222222; give more of its digits"
    )


def test_a_run_id_cannot_be_recorded_twice(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    with pytest.raises(StoreError, match=f"run {run.id} is already in the run store"):
        store.start_run(run)


def test_put_run_records_a_run_once_however_often_it_is_put(store: RunStore) -> None:
    run = finish(make_run(tags={"team": "vision"}))
    store.put_run(run)
    store.put_run(run)
    assert store.count_runs() == 1
    assert store.get_run(run.id) == replace(run, heartbeat=run.started)


def test_put_run_finishes_a_running_run_and_then_changes_nothing(store: RunStore) -> None:
    run = make_run()
    store.put_run(run)
    assert store.get_run(run.id).status is RunStatus.RUNNING
    store.put_run(finish(run))
    store.set_notes(run.id, "edited after it ended")
    store.put_run(finish(run))  # a second reader of the same journal file, a moment late
    got = store.get_run(run.id)
    assert got == finish(run, notes="edited after it ended", heartbeat=run.started)
    assert len(got.steps) == 1 and len(got.artifacts) == 1


def test_put_run_of_a_running_run_only_moves_its_heartbeat_forward(store: RunStore) -> None:
    run = make_run(heartbeat=time.time())
    store.put_run(run)
    store.put_run(replace(run, heartbeat=run.heartbeat - 50))  # type: ignore[operator]
    assert store.get_run(run.id).heartbeat == run.heartbeat
    store.put_run(replace(run, heartbeat=run.heartbeat + 5))  # type: ignore[operator]
    assert store.get_run(run.id).heartbeat == run.heartbeat + 5  # type: ignore[operator]
    store.finish_run(finish(run))
    store.put_run(run)  # an ended run never goes back to running
    assert store.get_run(run.id).status is RunStatus.FINISHED


def test_put_run_gives_a_run_marked_interrupted_the_end_its_journal_recorded(
    store: RunStore,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    from mlbuild.store import process_token

    run = make_run(process=process_token(child.pid))
    store.put_run(run)
    assert store.reap_stale() == [run.id]  # a reader saw the process gone before the journal
    store.put_run(finish(run))  # … then the journal's final record arrives
    assert store.get_run(run.id).status is RunStatus.FINISHED


def test_runs_list_newest_first_and_at_most_limit(store: RunStore) -> None:
    runs = [make_run(started=1000.0 + i) for i in range(5)]
    for run in runs:
        store.start_run(run)
        store.finish_run(finish(run))
    assert [r.id for r in store.list_runs(query(limit=3))] == [r.id for r in runs[::-1][:3]]
    assert store.count_runs() == 5
    listed = store.list_runs(query())[0]
    assert (listed.steps, listed.artifacts) == ([], [])  # list leaves the heavy parts out


def test_runs_that_executed_nothing_are_left_out_when_asked(store: RunStore) -> None:
    hit = [StepEntry("train", "cached", "f" * 64, 0.0, cache_hit=True)]
    mixed = [*hit, StepEntry("evaluate", "ran", "e" * 64, 1.0, cache_hit=False)]
    made, noop, partly, failed, running = (make_run(started=1000.0 + i) for i in range(5))
    for run, steps, status in (
        (made, None, RunStatus.FINISHED),
        (noop, hit, RunStatus.FINISHED),
        (partly, mixed, RunStatus.FINISHED),
        (failed, hit, RunStatus.FAILED),
    ):
        store.start_run(run)
        store.finish_run(finish(run, status=status, **({"steps": steps} if steps else {})))
    store.start_run(running)  # no steps recorded yet: still running, not a no-op
    executed = query(include_noop=False)
    assert [r.id for r in store.list_runs(executed)] == [
        r.id for r in (running, failed, partly, made)
    ]
    assert len(store.list_runs(query())) == 5
    assert (store.count_runs(executed), store.count_runs(query()), store.count_runs()) == (4, 5, 5)
    assert store.count_runs(query(include_noop=False, statuses=["finished"])) == 2


def test_runs_are_filtered_by_param_metric_tag_status_and_commit(store: RunStore) -> None:
    def record(lr: float, model: str, accuracy: float, **fields: object) -> str:
        run = make_run(params={"train": {"lr": lr}, "model": model}, **fields)
        store.start_run(run)
        store.finish_run(finish(run, metrics={"accuracy": accuracy}))
        return run.id

    slow = record(0.01, "tree", 0.91, tags={"best": "yes"})
    fast = record(0.1, "tree", 0.85)
    other = record(0.1, "forest", 0.95, git=None)
    failed = make_run(params={"train": {"lr": 0.5}})
    store.start_run(failed)
    store.finish_run(finish(failed, status=RunStatus.FAILED))

    def ids(**fields: object) -> set[str]:
        return {r.id for r in store.list_runs(query(**fields))}

    assert ids(params=[param("train.lr=0.1")]) == {fast, other}
    assert ids(params=[param("train.lr=0.10")]) == {fast, other}  # numbers compare as numbers
    assert ids(params=[param("train.lr<0.1")]) == {slow}
    assert ids(params=[param("model=tree"), param("train.lr>=0.1")]) == {fast}
    assert ids(params=[param("model!=tree")]) == {other}  # a run without the param never matches
    assert ids(metrics=[metric("accuracy>0.9")]) == {slow, other}
    assert ids(tags=[parse_tag_condition("best")]) == {slow}
    assert ids(tags=[parse_tag_condition("best=no")]) == set()
    assert ids(statuses=["failed"]) == {failed.id}
    assert ids(commit="ccccccc") == {slow, fast, failed.id}


def test_runs_sort_by_a_metric_and_runs_without_it_come_last(store: RunStore) -> None:
    made = {}
    for name, accuracy in (("low", 0.5), ("high", 0.9), ("none", None), ("mid", 0.7)):
        run = make_run()
        store.start_run(run)
        metrics = {} if accuracy is None else {"accuracy": accuracy}
        store.finish_run(finish(run, metrics=metrics))
        made[run.id] = name
    best = [made[r.id] for r in store.list_runs(query(sort="accuracy"))]
    worst = [made[r.id] for r in store.list_runs(query(sort="accuracy", descending=False))]
    assert (best, worst) == (["high", "mid", "low", "none"], ["low", "mid", "high", "none"])


def test_tags_and_notes_change_after_a_run_ends(store: RunStore) -> None:
    run = make_run(tags={"a": "1", "b": "2"})
    store.start_run(run)
    store.finish_run(finish(run))
    assert store.set_tags(run.id[:6], {"a": "9", "c": "3"}, ["b"]).tags == {"a": "9", "c": "3"}
    assert store.set_notes(run.id, "the good one").notes == "the good one"


def test_a_run_whose_process_died_is_marked_interrupted(store: RunStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    from mlbuild.store import process_token

    run = make_run(process=process_token(child.pid))
    store.start_run(run)
    assert store.reap_stale() == [run.id]
    got = store.get_run(run.id)
    assert (got.status, got.ended) == (RunStatus.INTERRUPTED, run.started)


def test_a_run_on_another_machine_is_interrupted_when_its_heartbeat_stops(url: str) -> None:
    store = open_store(url)
    elsewhere = "00000000-0000-0000-0000-000000000000:1:4242:1"
    silent = make_run(process=elsewhere, started=time.time() - 1000)
    beating = make_run(process=elsewhere, started=time.time() - 1000)
    for run in (silent, beating):
        store.start_run(run)
    store.heartbeat(beating.id)
    assert store.reap_stale() == [silent.id]
    assert store.get_run(beating.id).status is RunStatus.RUNNING
    store.close()


def test_a_live_run_stays_running(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    assert store.reap_stale() == []
    assert store.list_runs(query())[0].status is RunStatus.RUNNING


def test_model_versions_count_up_and_keep_their_provenance(store: RunStore) -> None:
    first, second = make_run(), make_run()
    for run in (first, second):
        store.start_run(run)
        store.finish_run(finish(run))
    model = [Artifact("model.pkl", "d" * 64, 123, "train")]
    v1 = store.register_model("iris", first.id, model, "baseline")
    v2 = store.register_model("iris", second.id[:8], model, "")
    other = store.register_model("digits", second.id, model, "")
    assert [(v.name, v.version) for v in (v1, v2, other)] == [
        ("iris", 1),
        ("iris", 2),
        ("digits", 1),
    ]
    assert store.model_version("iris", 1) == v1
    assert v1.provenance["run_id"] == first.id
    assert v1.provenance["git"]["commit"] == "c" * 40
    assert v1.provenance["params"] == first.params
    assert [v.version for v in store.model_versions("iris")] == [1, 2]
    with pytest.raises(NotFoundError, match="model 'iris' has no version 7; it has versions 1, 2"):
        store.model_version("iris", 7)
    with pytest.raises(NotFoundError) as caught:
        store.model_versions("irs")
    assert caught.value.message == (
        "no model named 'irs' in the run store (did you mean 'iris'?); register one with "
        "`mlbuild model register RUN --name NAME`"
    )


def test_a_published_image_is_recorded_on_its_model_version(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    store.finish_run(finish(run))
    model = [Artifact("model.pkl", "d" * 64, 123, "train")]
    store.register_model("iris", run.id, model, "")
    store.register_model("iris", run.id, model, "")
    digest = "sha256:" + "e" * 64
    store.record_image("iris", 2, "127.0.0.1:5000/iris", "sha256:" + "0" * 64)
    store.record_image("iris", 2, "127.0.0.1:5000/iris", digest)  # published again: replaced
    versions = store.model_versions("iris")
    assert versions[0].images == []
    assert versions[1].images == [{"repository": "127.0.0.1:5000/iris", "digest": digest}]
    assert store.model_version("iris", 2).images == versions[1].images
    with pytest.raises(NotFoundError, match="model 'iris' has no version 3"):
        store.record_image("iris", 3, "127.0.0.1:5000/iris", digest)


def test_only_a_finished_run_can_be_registered(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    store.finish_run(finish(run, status=RunStatus.FAILED))
    with pytest.raises(UsageError) as caught:
        store.register_model("iris", run.id, [Artifact("m", "d", 1, "s")], "")
    assert caught.value.message == (
        f"run {run.id[:8]} is failed; only a finished run can be registered"
    )


def test_aliases_keep_their_history_and_roll_back_one_move(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    store.finish_run(finish(run))
    for _ in range(3):
        store.register_model("iris", run.id, [Artifact("m", "d", 1, "s")], "")
    store.set_alias("iris", "production", 1)
    store.set_alias("iris", "production", 3)
    store.set_alias("iris", "staging", 2)
    assert store.aliases("iris") == {"production": 3, "staging": 2}
    assert store.rollback_alias("iris", "production").version == 1
    assert store.aliases("iris") == {"production": 1, "staging": 2}
    assert [(c.alias, c.version) for c in store.alias_history("iris")] == [
        ("production", 1),
        ("production", 3),
        ("staging", 2),
        ("production", 1),
    ]
    store.set_alias("iris", "staging", None)
    assert store.aliases("iris") == {"production": 1}
    with pytest.raises(UsageError) as caught:
        store.set_alias("iris", "staging", 9)
    assert caught.value.message == "model 'iris' has no version 9; it has versions 1, 2, 3"


def test_rollback_needs_an_earlier_version(store: RunStore) -> None:
    run = make_run()
    store.start_run(run)
    store.finish_run(finish(run))
    store.register_model("iris", run.id, [Artifact("m", "d", 1, "s")], "")
    store.set_alias("iris", "production", 1)
    with pytest.raises(UsageError) as caught:
        store.rollback_alias("iris", "production")
    assert caught.value.message == (
        "alias 'production' of model 'iris' has pointed only at version 1; there is no earlier "
        "version to roll back to"
    )
    with pytest.raises(NotFoundError) as missing:
        store.rollback_alias("iris", "staging")
    assert missing.value.message == "model 'iris' has no alias 'staging'; its aliases: production"


def test_opening_an_older_store_migrates_it_and_keeps_its_runs(url: str) -> None:
    old = finish(make_run())
    engine = make_engine(url)
    with engine.begin() as conn:  # a store as mlbuild's first schema left it, with one run
        migrate(conn, target=1)
        conn.execute(sa.insert(runs).values(**_run_row(old)))
    upgraded = open_store(url)
    assert upgraded.get_run(old.id).metrics == old.metrics
    upgraded.register_model("iris", old.id, [Artifact("m", "d", 1, "s")], "")  # version 2 tables
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM mlbuild_schema")).scalar() == LATEST
    engine.dispose()
    upgraded.close()


def test_a_version_2_store_learns_which_of_its_runs_executed_nothing(url: str) -> None:
    hit = [StepEntry("train", "cached", "f" * 64, 0.0, cache_hit=True)]
    made, noop = finish(make_run(started=1.0)), finish(make_run(started=2.0), steps=hit)
    engine = make_engine(url)
    with engine.begin() as conn:  # a store as version 2 left it: no runs.executed column
        migrate(conn, target=2)
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN executed"))
        for run in (made, noop):
            row = {k: v for k, v in _run_row(run).items() if k != "executed"}
            conn.execute(sa.insert(runs).values(**row))
            conn.execute(
                sa.insert(run_steps),
                [{"run_id": run.id, "position": i, **s.__dict__} for i, s in enumerate(run.steps)],
            )
    engine.dispose()
    upgraded = open_store(url)
    assert [r.id for r in upgraded.list_runs(query(include_noop=False))] == [made.id]
    assert [r.id for r in upgraded.list_runs(query())] == [noop.id, made.id]
    upgraded.close()


def test_a_store_newer_than_this_mlbuild_is_refused(url: str) -> None:
    open_store(url).close()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE mlbuild_schema SET version = 99"))
    engine.dispose()
    with pytest.raises(StoreError) as caught:
        open_store(url)
    assert caught.value.message == (
        f"the run store is at schema version 99, newer than this mlbuild understands ({LATEST}); "
        "upgrade mlbuild (`pip install -U mlbuild-engine`)"
    )


@pytest.mark.slow
def test_eight_processes_writing_fifty_runs_each_lose_nothing(url: str) -> None:
    open_store(url).close()  # as a team store is: created once, then shared
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store.factory", url, str(worker), "50"],
            cwd=REPO,
            env={**os.environ, **CHILD_ENV},
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(8)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
    store = open_store(url)
    runs = store.list_runs(query(limit=None))
    assert len(runs) == 400
    assert {r.status for r in runs} == {RunStatus.FINISHED}
    by_worker: dict[str, list[int]] = {}
    for run in runs:
        by_worker.setdefault(run.tags["worker"], []).append(run.metrics["i"])
    assert {w: sorted(i) for w, i in by_worker.items()} == {
        str(w): list(range(50)) for w in range(8)
    }
    assert all(len(store.get_run(r.id).steps) == 1 for r in runs[:20])
    store.close()


@pytest.mark.slow
def test_eight_processes_putting_the_same_twenty_runs_at_once_record_each_once(url: str) -> None:
    open_store(url).close()
    made = [make_run(tags={"n": str(i)}, params={"i": i}) for i in range(20)]
    records = tmp_records(made)
    putters = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store.factory", "put", url, records],
            cwd=REPO,
            env={**os.environ, **CHILD_ENV},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    for putter in putters:
        _, err = putter.communicate(timeout=240)
        assert putter.returncode == 0, err
    store = open_store(url)
    assert sorted(r.id for r in store.list_runs(query(limit=None))) == sorted(r.id for r in made)
    for run in made:
        want = finish(run, metrics={"i": run.params["i"]}, heartbeat=run.started)
        assert store.get_run(run.id) == want
    store.close()


@pytest.mark.slow
def test_a_new_store_opened_by_many_processes_at_once_is_created_once(url: str) -> None:
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store.factory", url, str(worker), "2"],
            cwd=REPO,
            env={**os.environ, **CHILD_ENV},
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(6)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    assert open_store(url).count_runs() == 12
