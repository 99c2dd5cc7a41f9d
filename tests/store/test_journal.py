"""The run journal (mlbuild/store/journal.py): `mlbuild run` writes JSON files, and every reader
moves them into the store — any number at once, each run once, a corrupt file set aside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlbuild.store import (
    JournalStore,
    RunQuery,
    RunRecord,
    RunStatus,
    open_store,
    process_token,
)
from mlbuild.store.journal import ingest
from tests.conftest import CHILD_ENV, Workspace
from tests.store.factory import finish, make_run

RECIPE = "schema_version: 1\nname: demo\nsteps:\n  s: {cmd: echo, outs: [o.txt]}\n"
JOURNAL = ".mlbuild/runs/journal"


def journal_of(folder: Path, count: int) -> list[RunRecord]:
    """``count`` finished runs written by the writer `mlbuild run` uses."""
    writer = JournalStore(folder)
    made = []
    for i in range(count):
        run = make_run(params={"i": i}, tags={"n": str(i)})
        writer.start_run(run)
        writer.finish_run(finish(run, metrics={"i": i}))
        made.append(run)
    return made


def runs_list(ws: Workspace) -> subprocess.Popen[str]:
    return ws.start("runs", "list", "--json", "-n", "1000")


@pytest.fixture
def demo(ws: Workspace) -> Workspace:
    ws.recipe(RECIPE)
    assert ws.cli("validate").returncode == 0  # creates .mlbuild as a first command would
    return ws


@pytest.mark.slow
def test_eight_runs_list_at_once_on_a_fresh_journal_all_succeed_and_list_each_run_once(
    demo: Workspace,
) -> None:
    made = journal_of(demo.root / JOURNAL, 20)
    readers = [runs_list(demo) for _ in range(8)]
    outputs = [reader.communicate(timeout=240) for reader in readers]
    for reader, (out, err) in zip(readers, outputs, strict=True):
        assert reader.returncode == 0, err
        assert err == ""
        listed = [r["id"] for r in json.loads(out)]
        # a reader may list before another's move lands, but never a run twice
        assert len(listed) == len(set(listed))
    final = json.loads(demo.cli("runs", "list", "--json", "-n", "1000").stdout)
    assert sorted(r["id"] for r in final) == sorted(r.id for r in made)
    assert {r["status"] for r in final} == {"finished"}
    assert list((demo.root / JOURNAL).glob("*.json")) == []


INGEST = """
import sys
from pathlib import Path
from mlbuild.store import open_store
from mlbuild.store.journal import ingest
store = open_store(sys.argv[1])
ingest(Path(sys.argv[2]), store, lambda message: print("warning:", message, file=sys.stderr))
store.close()
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/runs.db"
    database: str = request.getfixturevalue("postgres").database()
    return database


def ingest_at_once(url: str, folder: Path, readers: int) -> list[str]:
    """``readers`` processes moving ``folder`` into ``url`` at once; their stderr."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INGEST, url, str(folder)],
            cwd=folder.parent,
            env={**os.environ, **CHILD_ENV},
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(readers)
    ]
    errors = []
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        errors.append(err)
    return errors


@pytest.mark.slow
def test_eight_readers_moving_one_journal_into_one_store_record_each_run_once(
    url: str, tmp_path: Path
) -> None:
    open_store(url).close()
    folder = tmp_path / "journal"
    made = journal_of(folder, 20)
    assert ingest_at_once(url, folder, 8) == [""] * 8
    store = open_store(url)
    assert store.count_runs() == 20
    for run in made:
        got = store.get_run(run.id)
        assert got == finish(run, metrics={"i": run.params["i"]}, heartbeat=run.started)
    store.close()
    assert list(folder.glob("*.json")) == []


def corrupt_files(folder: Path) -> dict[str, str]:
    """Journal files that are not run records, by name → the reason a reader gives."""
    good = finish(make_run()).to_json()
    other = make_run().id
    files: dict[str, Any] = {
        "truncated": json.dumps(good)[:40].encode(),
        "empty": b"",
        "latin1": json.dumps({**good, "notes": "é"}).encode("latin-1"),
        "a-list": b"[1, 2]",
        "no-status": json.dumps({k: v for k, v in good.items() if k != "status"}).encode(),
        "bad-status": json.dumps({**good, "status": "bogus"}).encode(),
        "bad-type": json.dumps({**good, "started": "yesterday"}).encode(),
        "bad-step": json.dumps({**good, "steps": [{"name": "s"}]}).encode(),
        "stolen-id": json.dumps({**good, "id": other}).encode(),
    }
    names = {}
    for label, data in files.items():
        name = good["id"] if label == "stolen-id" else make_run().id
        (folder / f"{name}.json").write_bytes(data)
        names[name] = label
    return names


@pytest.mark.slow
def test_a_corrupt_journal_file_is_set_aside_and_reported_once_among_many_readers(
    url: str, tmp_path: Path
) -> None:
    open_store(url).close()
    folder = tmp_path / "journal"
    made = journal_of(folder, 3)
    names = corrupt_files(folder)
    warnings = [line for err in ingest_at_once(url, folder, 8) for line in err.splitlines() if line]
    assert len(warnings) == len(names)  # each once, whichever reader moved it
    assert sorted(p.stem for p in (folder / "corrupt").iterdir()) == sorted(names)
    assert sorted(p.stem for p in folder.glob("*.json")) == []
    store = open_store(url)
    assert sorted(r.id for r in store.list_runs(RunQuery(limit=None))) == sorted(r.id for r in made)
    store.close()
    assert ingest_at_once(url, folder, 1) == [""]  # set aside: not reported again


def test_the_warning_names_the_file_where_it_went_and_why(demo: Workspace) -> None:
    good = finish(make_run())
    folder = demo.root / JOURNAL
    folder.mkdir(parents=True, exist_ok=True)
    stolen = make_run().id
    (folder / f"{stolen}.json").write_text(json.dumps(good.to_json()))
    (folder / f"{good.id}.json").write_text('{"id": ')
    first = demo.cli("runs", "list", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == []
    assert first.stderr.splitlines() == sorted(
        [
            f"mlbuild: warning: the run journal file {JOURNAL}/{stolen}.json is corrupt (its run "
            f"id '{good.id}' does not match its name); it was moved to "
            f"{JOURNAL}/corrupt/{stolen}.json and left out of the run store",
            f"mlbuild: warning: the run journal file {JOURNAL}/{good.id}.json is corrupt (not a "
            "run record: Expecting value: line 1 column 8 (char 7)); it was moved to "
            f"{JOURNAL}/corrupt/{good.id}.json and left out of the run store",
        ],
        key=lambda line: line.split(JOURNAL)[1],
    )
    again = demo.cli("runs", "list", "--json")
    assert (again.returncode, again.stderr) == (0, "")


def test_a_run_whose_process_died_leaves_the_journal_as_interrupted(demo: Workspace) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = make_run(process=process_token(child.pid))
    alive = make_run()  # this test's own process: still running
    writer = JournalStore(demo.root / JOURNAL)
    writer.start_run(dead)
    writer.start_run(alive)
    listed = json.loads(demo.cli("runs", "list", "--json").stdout)
    assert {r["id"]: r["status"] for r in listed} == {
        dead.id: RunStatus.INTERRUPTED.value,
        alive.id: RunStatus.RUNNING.value,
    }
    assert [p.stem for p in (demo.root / JOURNAL).glob("*.json")] == [alive.id]


def test_a_run_that_ends_while_a_reader_copies_it_keeps_its_final_record(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE, text=True)
    run = make_run(process=process_token(child.pid))
    folder = tmp_path / "journal"
    writer = JournalStore(folder)
    writer.start_run(run)
    store = open_store(f"sqlite:///{tmp_path}/runs.db")

    class EndsMeanwhile:
        """The store, while the run writes its final record and exits under the reader."""

        def put_run(self, record: RunRecord) -> None:
            store.put_run(record)
            writer.finish_run(finish(run))
            child.communicate("\n")

    ingest(folder, EndsMeanwhile(), print)  # type: ignore[arg-type]
    assert [p.stem for p in folder.glob("*.json")] == [run.id], "the final record is kept"
    ingest(folder, store, print)
    assert store.get_run(run.id).status is RunStatus.FINISHED
    store.close()


def test_a_record_as_json_holds_every_field_of_it_and_of_its_steps_and_artifacts() -> None:
    # to_json copies the flat step and artifact entries itself (asdict's deep copy of
    # thousands of them was a third of a no-op run): the result must be asdict's, and a copy
    from dataclasses import asdict

    run = finish(make_run(), data_versions={"raw": "dvc abc"}, tags={"t": "1"})
    data = run.to_json()
    assert data == {**asdict(run), "status": "finished", "duration": 1.0}
    assert list(data["steps"][0]) == ["name", "status", "fingerprint", "duration", "cache_hit"]
    data["steps"][0]["name"] = "changed"
    data["params"]["train"]["lr"] = 0
    assert run.steps[0].name == "train" and run.params["train"]["lr"] == 0.1
