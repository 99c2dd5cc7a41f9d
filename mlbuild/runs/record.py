"""Record a run in the store around the executor: ``running`` when it starts, a heartbeat while
it goes, and its outcome — finished, failed or interrupted — when it ends.

A run killed outright (SIGKILL, a lost machine) cannot write its end; the store marks it
interrupted when its process is gone or its heartbeat stops (see ``mlbuild/store/base.py``).
Secret values — of every secret a step of the recipe declares — are masked out of everything
recorded, even a metrics file a step wrote one into.
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mlbuild.errors import InterruptError, MlbuildError
from mlbuild.exec import Reporter, RunSummary, Status, graph_secrets, run_steps
from mlbuild.graph import Graph, Workspace
from mlbuild.masking import Secrets, remember
from mlbuild.runs.gc import register_workspace
from mlbuild.runs.provenance import git_info, host_name, user_name
from mlbuild.store import (
    Artifact,
    RunRecord,
    RunStatus,
    RunWriter,
    StepEntry,
    process_token,
)

# the remote package (http.client, ssl) is imported only when a remote cache is used
if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteCache

HEARTBEAT = 15.0  # seconds; the store treats a run silent for STALE_AFTER (120 s) as dead
_HITS = (Status.CACHED, Status.RESTORED)


@dataclass(frozen=True)
class RecordedRun:
    summary: RunSummary
    record: RunRecord


def recorded_run(
    ws: Workspace,
    store: RunWriter,
    graph: Graph,
    *,
    targets: list[str],
    force: bool | frozenset[str],
    jobs: int,
    reporter: Reporter,
    kind: str = "run",
    tags: dict[str, str] | None = None,
    notes: str = "",
    isolation: dict[str, str] | None = None,
    keep_going: bool = False,
    executor: str | None = None,
    then: Callable[[RunSummary], RunSummary] | None = None,
    remote: RemoteCache | None = None,
) -> RecordedRun:
    """:func:`~mlbuild.exec.run_steps`, recorded in ``store`` from start to end.

    ``then``, if given, runs within the recorded run once the steps succeeded, and returns the
    summary with what it did added (``mlbuild test`` adds each test's outcome)."""
    register_workspace(ws, graph.store_url)  # so gc in a clone sharing the cache keeps our results
    secrets = graph_secrets(graph)
    remember(secrets)  # a crash from here on is logged masked
    tags = {**(tags or {}), **_best_taken(graph, targets)}
    record = _mask(new_record(ws, graph, kind=kind, tags=tags, notes=notes), secrets)
    store.start_run(record)
    beat = _Heartbeat(store, record.id)
    try:
        summary = run_steps(
            ws,
            graph,
            targets=targets,
            force=force,
            jobs=jobs,
            reporter=reporter,
            isolation=isolation,
            keep_going=keep_going,
            executor=executor,
            remote=remote,
        )
        if then is not None and not summary.failed:
            summary = then(summary)
    except InterruptError:
        beat.stop()
        store.finish_run(replace(record, status=RunStatus.INTERRUPTED, ended=time.time()))
        raise
    except BaseException:
        beat.stop()
        store.finish_run(replace(record, status=RunStatus.FAILED, ended=time.time()))
        raise
    beat.stop()
    final = _mask(finished_record(ws, record, summary), secrets)
    store.finish_run(final)
    return RecordedRun(summary, final)


def _best_taken(graph: Graph, targets: list[str]) -> dict[str, str]:
    """Tags naming the best params a step of the run takes from a search (``params_from``),
    which the record's ``params``, the recipe's, do not show: ``params_from.final`` →
    ``search hpo, trial 7 (run 1a2b3c4d): train.lr=0.003``."""
    tags = {}
    for name in graph.upstream_closure(targets) if targets else graph.steps:
        best = graph.steps[name].best
        if not best:
            continue
        values = " ".join(f"{k}={v}" for k, v in best["params"].items())
        run = f" (run {str(best['run_id'])[:8]})" if best.get("run_id") else ""
        trial = f", trial {best['trial']}" if "trial" in best else ""
        tags[f"params_from.{name}"] = f"search {best['search']}{trial}{run}: {values}"
    return tags


def new_record(
    ws: Workspace, graph: Graph, *, kind: str, tags: dict[str, str], notes: str
) -> RunRecord:
    """The record of a run of ``graph`` that starts now."""
    recipe = ws.cache.hasher.digest(os.path.relpath(ws.recipe_path, ws.root))
    lock = ws.cache.hasher.digest(graph.lock_file) if graph.lock_file else None
    return RunRecord(
        id=uuid.uuid4().hex,
        kind=kind,
        recipe_name=graph.name,
        recipe_hash=recipe.value if recipe else None,
        git=git_info(ws.root),
        user=user_name(),
        host=host_name(),
        pid=os.getpid(),
        process=process_token(),
        python=platform.python_version(),
        lock_hash=lock.value if lock else None,
        started=time.time(),
        overrides=list(graph.overrides),
        params=graph.params,
        tags=dict(tags),
        notes=notes,
    )


def finished_record(ws: Workspace, record: RunRecord, summary: RunSummary) -> RunRecord:
    """``record`` completed with what ``summary`` says happened."""
    steps = [
        StepEntry(o.name, o.status.value, o.fingerprint, round(o.duration, 6), o.status in _HITS)
        for o in summary.outcomes
    ]
    artifacts = []
    for outcome in summary.outcomes:
        if outcome.fingerprint is None or outcome.status not in (Status.RAN, *_HITS):
            continue
        outs = outcome.outs
        if outs is None:  # an outcome made without its entry's outputs: read the entry
            result = ws.cache.actions.get(outcome.fingerprint)
            if result is None:
                continue
            outs = result.outs
        artifacts += [
            Artifact(path, out.digest, out.size, outcome.name, out.cached)
            for path, out in sorted(outs.items())
        ]
    return replace(
        record,
        status=RunStatus.FAILED if summary.failed else RunStatus.FINISHED,
        ended=time.time(),
        data_versions={v.name: v.describe() for v in summary.data},
        metrics=summary.metrics,
        steps=steps,
        artifacts=artifacts,
    )


class _Heartbeat:
    """Tells the store every ``HEARTBEAT`` seconds that the run is alive."""

    def __init__(self, store: RunWriter, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="mlbuild-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(HEARTBEAT):
            # a missed beat only risks an early "interrupted"; the run goes on
            with contextlib.suppress(MlbuildError, OSError):
                self._store.heartbeat(self._run_id)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _mask(record: RunRecord, secrets: Secrets) -> RunRecord:
    """``record`` with secrets masked out of everything a user or a step could have put in it."""
    if not secrets:
        return record
    return replace(
        record,
        overrides=secrets.data(record.overrides),
        params=secrets.data(record.params),
        metrics=secrets.data(record.metrics),
        data_versions=secrets.data(record.data_versions),
        tags=secrets.data(record.tags),
        notes=secrets.text(record.notes),
    )
