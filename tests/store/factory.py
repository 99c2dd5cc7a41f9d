"""Run records for the store's tests, and a writer process for the concurrency tests."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import replace
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


if __name__ == "__main__":
    write_runs(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
