"""Run records for the store's tests, and a writer process for the concurrency tests."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlbuild.store import (
    Artifact,
    GitInfo,
    RunRecord,
    RunStatus,
    StepEntry,
    open_store,
    process_token,
)


def make_run(**fields: Any) -> RunRecord:
    """A running run of this process, with ``fields`` replaced."""
    base = RunRecord(
        id=uuid.uuid4().hex,
        kind="run",
        recipe_name="demo",
        recipe_hash="r" * 64,
        git=GitInfo("c" * 40, "main", False),
        user="alice",
        host="laptop",
        pid=1,
        python="3.11.7",
        lock_hash="l" * 64,
        started=time.time(),
        process=process_token(),
        overrides=[],
        params={"train": {"lr": 0.1, "epochs": 10}, "model": "tree"},
    )
    return replace(base, **fields)


def finish(run: RunRecord, **fields: Any) -> RunRecord:
    """``run`` finished a second later with one step, one artifact and ``fields`` replaced."""
    done = replace(
        run,
        status=RunStatus.FINISHED,
        ended=run.started + 1.0,
        metrics={"accuracy": 0.9},
        steps=[StepEntry("train", "ran", "f" * 64, 1.0, cache_hit=False)],
        artifacts=[Artifact("model.pkl", "d" * 64, 123, "train")],
    )
    return replace(done, **fields)


def write_runs(url: str, worker: int, count: int) -> None:
    """Record ``count`` runs from start to finish, as one ``mlbuild run`` each would."""
    store = open_store(url)
    for i in range(count):
        run = make_run(tags={"worker": str(worker)}, params={"i": i, "worker": worker})
        store.start_run(run)
        store.heartbeat(run.id)
        store.finish_run(finish(run, metrics={"i": i}))
    store.close()


def tmp_records(runs: list[RunRecord]) -> str:
    """``runs`` saved as a JSON file (its path returned) for :func:`put_runs` in a child."""
    import json
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump([r.to_json() for r in runs], handle)
    return handle.name


def put_runs(url: str, records: str) -> None:
    """Put each run of ``records`` running, then finished with a step and an artifact, as every
    reader of one journal does."""
    import json

    from mlbuild.store.journal import record_from_json

    store = open_store(url)
    for raw in json.loads(Path(records).read_text()):
        run = record_from_json(raw)
        store.put_run(run)
        store.put_run(finish(run, metrics={"i": run.params["i"]}))
    store.close()


if __name__ == "__main__":
    if sys.argv[1] == "put":
        put_runs(sys.argv[2], sys.argv[3])
    else:
        write_runs(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
