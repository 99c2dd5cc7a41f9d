"""Running a search: workers that take trials from the study until it holds ``n_trials``.

``mlbuild search NAME`` runs one worker in its own process, or with ``--jobs N`` starts N worker
processes (``mlbuild search NAME --worker``) and waits for them; ``--worker`` on other machines
joins the same study through a shared storage. Each worker, in its own copy of the workspace
(:mod:`mlbuild.search.workers`), asks Optuna for one trial at a time until the study is done:

    done = COMPLETE + PRUNED + FAIL trials, less those retried (a retry counts when it finishes)
    stop when done + RUNNING >= n_trials and no trial WAITS (a retry, or an interrupted trial
    enqueued again), or when the timeout has passed

so raising ``n_trials`` extends a study, re-running a finished one runs nothing, and a resumed
search first re-runs what a killed or interrupted worker left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlbuild.exec import Reporter, run_lock
from mlbuild.graph import Graph, Workspace
from mlbuild.search.channel import ReportChannel
from mlbuild.search.claim import TrialClaim
from mlbuild.search.naming import default_study_name
from mlbuild.search.shape import TrialGraphs
from mlbuild.search.spec import SearchSpec, heartbeat
from mlbuild.search.study import (
    open_storage,
    open_study,
    optuna_module,
    storage_url,
    worker_seed,
)
from mlbuild.search.trial import RETRY_OF, TrialFailed, TrialObjective, TrialResult
from mlbuild.search.workers import sync_copy, worker_slot, worker_workspace
from mlbuild.store import recorder_store

if TYPE_CHECKING:
    pass


@dataclass
class WorkerOutcome:
    study: str
    trials: int  # trials this worker ran


def prepare_study(ws: Workspace, spec: SearchSpec) -> tuple[str, str]:
    """The study's name and storage URL, the study created if new (so that workers started
    together do not race to create it)."""
    name = default_study_name(ws, spec)
    url = storage_url(spec, ws.meta)
    open_study(spec, open_storage(url, workers=False), name)
    return name, url


def run_worker(
    ws: Workspace,
    spec: SearchSpec,
    graph: Graph,
    *,
    study_name: str,
    url: str,
    reporter: Reporter,
    on_trial: Callable[[TrialResult], None],
    on_wait: Callable[[str], None],
) -> WorkerOutcome:
    """Take trials of the study until it is done, in a copy of ``ws`` of this worker's own."""
    optuna = optuna_module()
    store = recorder_store(ws.meta, graph.store_url)  # trial records land in the workspace's
    started = time.monotonic()
    ran = 0
    with worker_slot(ws, spec.name) as (slot, folder):
        sync_copy(ws, graph, folder)
        copy = worker_workspace(ws, folder)
        with run_lock(copy.meta, wait=True, on_wait=on_wait):
            storage = open_storage(url)
            existing = len(open_study(spec, storage, study_name).get_trials(deepcopy=False))
            seed = worker_seed(spec, slot, existing)
            study = open_study(spec, storage, study_name, seed=seed)
            graphs = TrialGraphs(copy, spec)
            channel = ReportChannel()
            objective = TrialObjective(
                copy, store, spec, study_name, channel, reporter, on_trial, graphs
            )
            claim = TrialClaim(url, study_name)
            # released by the objective once its trial is RUNNING in the storage (claim.py)
            objective.on_claimed = claim.release
            try:
                while True:
                    with claim.held():
                        if _done(optuna, study, spec, started):
                            break
                        study.optimize(objective, n_trials=1, catch=(TrialFailed,))
                    ran += 1
            finally:
                claim.close()
                channel.close()
                copy.save_state()
    return WorkerOutcome(study_name, ran)


def _done(optuna: Any, study: Any, spec: SearchSpec, started: float) -> bool:
    """Whether this worker stops: the timeout passed, or the study holds its trials. While other
    workers' trials still run and would complete it, wait: one of them may be dead, and its
    trial, failed once its heartbeat is stale, is retried by whoever is still here."""
    while True:
        if spec.timeout is not None and time.monotonic() - started >= spec.timeout:
            return True
        limit = spec.limit()
        if limit is None:
            return False
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed and retried
        state = optuna.trial.TrialState
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state in (state.COMPLETE, state.PRUNED, state.FAIL)]
        retried = [
            t for t in trials if "failed_trial" in t.system_attrs or RETRY_OF in t.user_attrs
        ]
        running = sum(1 for t in trials if t.state == state.RUNNING)
        if any(t.state == state.WAITING for t in trials):
            return False
        done = len(finished) - len(retried)
        if done >= limit:
            return True
        if done + running < limit:
            return False
        time.sleep(min(heartbeat(), 2))


def run_workers(
    ws: Workspace, spec_name: str, overrides: list[str], jobs: int, recipe_arg: list[str]
) -> int:
    """Start ``jobs`` worker processes for search ``spec_name`` and wait for them; returns the
    worst exit code. Ctrl-C reaches them too (one process group), and each stops cleanly."""
    command = [
        sys.executable,
        "-m",
        "mlbuild.cli.main",
        *recipe_arg,
        "search",
        spec_name,
        "--worker",
        *overrides,
    ]
    children = [subprocess.Popen(command, cwd=ws.root) for _ in range(jobs)]
    try:
        codes = [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGINT)
        codes = [child.wait() for child in children]
        raise
    return max(codes, default=0)
