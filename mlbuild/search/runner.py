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
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlbuild.exec import Reporter, run_lock
from mlbuild.graph import Graph, Workspace
from mlbuild.search.channel import ReportChannel
from mlbuild.search.claim import TrialClaim
from mlbuild.search.naming import default_study_name
from mlbuild.search.progress import StudyCounter
from mlbuild.search.shape import TrialGraphs
from mlbuild.search.spec import SearchSpec, heartbeat
from mlbuild.search.study import (
    open_storage,
    open_study,
    optuna_module,
    storage_url,
    worker_seed,
)
from mlbuild.search.trial import TrialFailed, TrialObjective, TrialResult
from mlbuild.search.workers import sync_copy, worker_slot, worker_workspace
from mlbuild.store import recorder_store

_POLL = 0.5  # seconds between looks at a study whose last trials other workers run
_TICK = 0.05  # seconds between glances at a SQLite study's files meanwhile


@dataclass
class WorkerOutcome:
    study: str
    trials: int  # trials this worker ran


def prepare_study(ws: Workspace, spec: SearchSpec) -> tuple[str, str, Any]:
    """The study's name, storage URL and storage (an Optuna ``RDBStorage`` with the workers'
    heartbeat), the study created if new (so that workers started together do not race to
    create it). One storage serves the whole process: opening one (SQLAlchemy's engine, table
    checks, Alembic's version check) costs more CPU than a trial's storage calls."""
    name = default_study_name(ws, spec)
    url = storage_url(spec, ws.meta)
    storage = open_storage(url)
    open_study(spec, storage, name)
    return name, url, storage


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
    storage: Any = None,
) -> WorkerOutcome:
    """Take trials of the study until it is done, in a copy of ``ws`` of this worker's own;
    ``storage``: the one :func:`prepare_study` opened, else one is opened."""
    optuna = optuna_module()
    store = recorder_store(ws.meta, graph.store_url)  # trial records land in the workspace's
    started = time.monotonic()
    ran = 0
    with worker_slot(ws, spec.name) as (slot, folder):
        sync_copy(ws, graph, folder)
        copy = worker_workspace(ws, folder)
        with run_lock(copy.meta, wait=True, on_wait=on_wait):
            storage = storage if storage is not None else open_storage(url)
            existing = len(open_study(spec, storage, study_name).get_trials(deepcopy=False))
            seed = worker_seed(spec, slot, existing)
            study = open_study(spec, storage, study_name, seed=seed)
            counter = StudyCounter(storage, study)
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
                        verdict = _verdict(optuna, study, counter, spec, started)
                        if verdict == "run":
                            study.optimize(objective, n_trials=1, catch=(TrialFailed,))
                    if verdict == "stop":
                        break
                    if verdict == "run":
                        ran += 1
                    else:  # without the claim: the other workers go on claiming meanwhile
                        _pause(url, min(heartbeat(), _POLL))
            finally:
                claim.close()
                channel.close()
                copy.save_state()
    return WorkerOutcome(study_name, ran)


def _verdict(
    optuna: Any, study: Any, counter: StudyCounter, spec: SearchSpec, started: float
) -> str:
    """What this worker does next: ``"stop"`` (the timeout passed, or the study holds its
    trials), ``"run"`` a trial, or ``"wait"``: other workers' trials still run and would complete
    the study, but one of them may be dead, and its trial, failed once its heartbeat is stale, is
    retried by whoever is still here.

    Stale trials are failed (and their retries enqueued) only before a ``"wait"``: before a
    ``"run"``, Optuna's own trial loop does it first thing, and on a ``"stop"`` nothing is
    missing. Doing it on every look cost a query and a scan of the study per trial."""
    if spec.timeout is not None and time.monotonic() - started >= spec.timeout:
        return "stop"
    limit = spec.limit()
    if limit is None:
        return "run"
    verdict = _count(counter, limit)
    if verdict == "wait":
        optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed and retried
        verdict = _count(counter, limit)
    return verdict


def _count(counter: StudyCounter, limit: int) -> str:
    """:func:`_verdict` from the study's trials as stored now."""
    now = counter.progress()
    if now.waiting:
        return "run"
    if now.done >= limit:
        return "stop"
    if now.done + now.running < limit:
        return "run"
    return "wait"


def _pause(url: str, seconds: float) -> None:
    """Sleep ``seconds``, or less: until a SQLite study's files change (another worker's trial
    finished, say), which a stat of them tells for next to no CPU. The full look at the study
    is what notices a dead worker's stale heartbeat, and it still comes every ``seconds``."""
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    if path is None:
        time.sleep(seconds)
        return
    before = _stamp(path)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(_TICK, left))
        if _stamp(path) != before:
            return


def _stamp(path: str) -> tuple[tuple[int, int, int], ...]:
    """Size, modification time and inode of a SQLite database and its journals (a commit
    writes one of them, whatever the journal mode)."""
    found = []
    for name in (path, f"{path}-wal", f"{path}-journal"):
        try:
            info = os.stat(name)
        except OSError:
            found.append((0, 0, 0))
        else:
            found.append((info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(found)


def run_workers(
    ws: Workspace,
    spec_name: str,
    overrides: list[str],
    jobs: int,
    recipe_arg: list[str],
    *,
    fork: Callable[[list[str]], int] | None = None,
) -> int:
    """Start ``jobs`` workers for search ``spec_name`` and wait for them; returns the worst exit
    code. Ctrl-C reaches them too (one process group), and each stops cleanly.

    With ``fork`` (the CLI's ``main``), each worker is this process forked, running ``fork`` on
    the worker's command line: it starts with Python, mlbuild, Optuna and SQLAlchemy imported,
    where a new interpreter spends seconds of CPU on them (bench/RESULTS.md, issue 11) — taken
    from the trials on a small machine. Without it, or where forking is unsafe (threads
    running), each is a new ``mlbuild search NAME --worker`` process."""
    argv = [*recipe_arg, "search", spec_name, "--worker", *overrides]
    if fork is not None and _can_fork():
        return _wait_forked([_forked(ws, fork, argv) for _ in range(jobs)])
    command = [sys.executable, "-m", "mlbuild.cli.main", *argv]
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


def _can_fork() -> bool:
    """A fork copies one thread: one holding a lock (logging's, SQLAlchemy's pool's) would
    leave it held forever in the child."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _forked(ws: Workspace, work: Callable[[list[str]], int], argv: list[str]) -> int:
    """A child running ``work(argv)`` in the workspace's root; its pid. The child never
    returns here: it exits with ``work``'s code, its output flushed."""
    for stream in (sys.stdout, sys.stderr):  # else the child prints the parent's buffer again
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 70  # EX_SOFTWARE, should ``work`` escape its own handling
    try:
        random.seed()  # the parent's state, shared by every child, would repeat their choices
        os.chdir(ws.root)
        code = work(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _wait_forked(pids: list[int]) -> int:
    """Wait for the children ``pids``; the worst exit code (a signal's death counts as 128 +
    its number). Ctrl-C is forwarded to them, and they are still waited for."""
    codes: list[int] = []
    try:
        codes = [_status(pid) for pid in pids]
    except KeyboardInterrupt:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGINT)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                _status(pid)
        raise
    return max(codes, default=0)


def _status(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
