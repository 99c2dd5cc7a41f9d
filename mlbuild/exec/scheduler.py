"""Run a graph's steps, independent ones in parallel, each of its kind and on its executor.

Steps are scheduled with ``graphlib``: a step starts when every step it depends on is done. Each
is decided just before it starts (cached, restore, run), so a step after one that reproduced
identical outputs is a cache hit (early cutoff). What a step does is its kind's
(:mod:`mlbuild.exec.kinds`), where its process runs its executor's (:mod:`mlbuild.exec.executor`);
the scheduler never starts a process itself.

The error policy, as make's and DVC's: a failed step fails only itself (:mod:`mlbuild.exec.step`)
and its dependents are skipped; by default no new step starts after a failure — the running ones
finish and stay cached — and with ``keep_going`` (``-k``) every step whose inputs are fine runs,
and all failures are reported at the end. Ctrl-C, SIGTERM and SIGHUP stop every running step and
raise :class:`InterruptError`; if mlbuild dies outright, the executors' leftover tracking stops
them. Everything reported is masked with the recipe's secrets on its way out.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from typing import TYPE_CHECKING, Any

from mlbuild.errors import InterruptError, MlbuildError
from mlbuild.exec.events import MaskingReporter, Reporter, RunSummary, Status, StepOutcome
from mlbuild.exec.executor import Executors, ProcessResult, RunningStep
from mlbuild.exec.identity import executor_of, identity_hook
from mlbuild.exec.kinds import external_hook
from mlbuild.exec.leftovers import forget_executors, note_executors
from mlbuild.exec.outputs import Outputs
from mlbuild.exec.params_files import write_params_files
from mlbuild.exec.remote_steps import RemoteSteps
from mlbuild.exec.step import StepRunner
from mlbuild.graph import Graph, Workspace
from mlbuild.masking import Secrets, remember

# the remote package (http.client, ssl) is imported only when a remote cache is used
if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteCache


def graph_secrets(graph: Graph) -> Secrets:
    """The current values of every secret a step of ``graph`` declares."""
    return Secrets.from_env(
        sorted({name for step in graph.steps.values() for name in step.secrets})
    )


def run_steps(
    workspace: Workspace,
    graph: Graph,
    *,
    targets: list[str],
    force: bool | frozenset[str],
    jobs: int,
    reporter: Reporter,
    keep_going: bool = False,
    executor: str | None = None,
    isolation: dict[str, str] | None = None,
    remote: RemoteCache | None = None,
) -> RunSummary:
    """Bring ``targets`` (:meth:`~mlbuild.graph.Graph.default_targets` if empty: every step but
    the tests) and what they depend on up to date.

    ``force``: run every step of the run (True), or these (``mlbuild test --force`` runs the tests
    again, not the training they test), whatever the cache holds.
    ``keep_going``: after a failure, still start every step that does not depend on it (else
    none starts). ``executor``: run every command step on this executor (``run --executor``).
    ``isolation``: the variables that run each step's processes in the environment built from
    the lock (``environment.isolated``; see :mod:`mlbuild.package.environments`).
    ``remote``: look steps up there after a local miss, and upload what runs.
    """
    return _Scheduler(
        workspace,
        graph,
        targets,
        force,
        jobs,
        reporter,
        keep_going,
        executor,
        isolation or {},
        remote,
    ).execute()


class _Scheduler:
    def __init__(
        self,
        workspace: Workspace,
        graph: Graph,
        targets: list[str],
        force: bool | frozenset[str],
        jobs: int,
        reporter: Reporter,
        keep_going: bool,
        executor: str | None,
        isolation: dict[str, str],
        remote: RemoteCache | None,
    ) -> None:
        self.ws = workspace
        self.graph = graph
        self.names = graph.upstream_closure(targets or graph.default_targets())
        self.executors = Executors(graph.executors)
        self.planner = workspace.planner(
            graph,
            force=set(self.names) if force is True else set(force or ()),
            identity=identity_hook(self.executors, executor),
            remote=remote,
            external=external_hook(graph, workspace),
        )
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.override = executor
        self.secrets = graph_secrets(graph)
        remember(self.secrets)  # for error messages and crash logs far from here
        self.reporter = MaskingReporter(reporter, self.secrets)
        self.outcomes: dict[str, StepOutcome] = {}
        self.running: dict[str, RunningStep] = {}
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.first_failure: str | None = None
        fence = workspace.fence(graph)
        self.runner = StepRunner(
            ws=workspace,
            graph=graph,
            planner=self.planner,
            fence=fence,
            outputs=Outputs(workspace, self.planner, fence, self.secrets, self.reporter.step_note),
            executors=self.executors,
            override=executor,
            isolation=isolation,
            secrets=self.secrets,
            reporter=self.reporter,
            cancelled=self.cancelled,
            watch=self._watch,
            remote=RemoteSteps(remote, workspace.cache, self.reporter.step_note),
        )

    def execute(self) -> RunSummary:
        started = time.monotonic()
        self.planner.check_inputs(self.names)
        write_params_files(self.ws.root, self.graph, self.reporter.step_note)
        used = {executor_of(self.graph.steps[n], self.override) for n in self.names}
        # each executor's identity, asked before any step starts: one that cannot run here (no
        # Docker engine, an image it does not hold) is the run's error (exit 2), not each step's
        for name in sorted(used):
            self.executors.identity(name)
        note_executors(self.ws.meta, used)  # so a killed run's leftovers can be found
        # nothing has written to the tree yet: each path is hashed once until a step writes
        self.planner.hold_digests()
        selected = set(self.names)
        sorter = TopologicalSorter(
            {n: [u for u in self.graph.steps[n].upstream if u in selected] for n in self.names}
        )
        sorter.prepare()
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="mlbuild-step")
        futures: dict[Future[StepOutcome], str] = {}
        order = {name: index for index, name in enumerate(self.names)}  # to report in order
        ready: deque[str] = deque()  # steps whose upstream is done, waiting for a free job slot
        deciding = threading.Event()
        previous = _on_stop_signals(self.cancelled, deciding)
        try:
            while sorter.is_active() and not self.cancelled.is_set():
                ready.extend(sorter.get_ready())
                # a step starts only when a job slot is free, so that after a failure nothing
                # queued starts (fail-fast) and its skip is reported after the failure
                while ready and len(futures) < self.jobs and not self.cancelled.is_set():
                    name = ready.popleft()
                    # a step the cache answers as it is finishes here, in this thread: handing
                    # it to a pool thread and waiting for its future cost more than deciding it
                    done_here = self._decide_here(name, deciding)
                    if done_here is not None:
                        self._finish(done_here)
                        sorter.done(name)
                        ready.extend(sorter.get_ready())
                    else:
                        futures[pool.submit(self._run, name)] = name
                if not futures:
                    continue
                done, _ = wait(futures, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: order[futures[f]]):
                    name = futures.pop(future)
                    self._finish(future.result())
                    sorter.done(name)
            if self.cancelled.is_set():
                self._stop(futures)
        except KeyboardInterrupt:  # before the handlers were in place, while deciding, or not main
            self.cancelled.set()
            self._stop(futures)
        finally:
            _restore_signals(previous)
            pool.shutdown(wait=True, cancel_futures=True)
            self.executors.close()
            report = self.runner.remote.finish(cancelled=self.cancelled.is_set())
            self.ws.save_state()
        forget_executors(self.ws.meta)  # nothing of this run is left running
        ordered = [self.outcomes[n] for n in self.names if n in self.outcomes]
        return RunSummary(
            ordered,
            time.monotonic() - started,
            self.graph.overrides,
            self.ws.cache.hasher.stats,
            self.planner.used_data(self.names),
            keep_going=self.keep_going,
            remote=report,
        )

    def _decide_here(self, name: str, deciding: threading.Event) -> StepOutcome | None:
        """The outcome of ``name`` when it must not start or the cache answers it; a stop
        signal interrupts this (see :func:`_on_stop_signals`)."""
        deciding.set()
        try:
            return self._skipped(name) or self.runner.cached(name)
        finally:
            deciding.clear()

    def _run(self, name: str) -> StepOutcome:
        """One step, in a pool thread."""
        return self.runner.run(name)

    def _skipped(self, name: str) -> StepOutcome | None:
        """The outcome of ``name`` when it must not start: a step it depends on failed, or
        (without ``keep_going``) any step failed."""
        if self.first_failure is None:
            return None  # only a failure blocks or stops a step (a no-op run asks per step)
        kind = self.graph.steps[name].kind
        blocked = self._blocked_by(name)
        if blocked is not None:
            return StepOutcome(
                name, Status.SKIPPED, message=f"not run: '{blocked}' failed", kind=kind
            )
        if self.first_failure is not None and not self.keep_going:
            message = f"not started after '{self.first_failure}' failed (--keep-going would run it)"
            return StepOutcome(name, Status.SKIPPED, message=message, kind=kind)
        return None

    def _watch(self, name: str, running: RunningStep) -> ProcessResult:
        """Wait for ``running``, which stops with the run: on Ctrl-C, and even if mlbuild dies."""
        try:
            with self.lock:
                self.running[name] = running
                cancelled = self.cancelled.is_set()
        except BaseException:
            running.abandon()
            raise
        if cancelled:  # Ctrl-C came after the start but before this registration: stop it too
            running.stop()
        try:
            return running.wait()
        finally:
            with self.lock:
                self.running.pop(name, None)

    def _stop(self, futures: dict[Future[StepOutcome], str]) -> None:
        """Stop every running step (polite, then forced), wait for them, and raise."""
        with self.lock:
            stopping = list(self.running.values())
        for running in stopping:
            running.stop()  # SIGTERM now; the step's thread escalates after the grace period
        for future in futures:
            with contextlib.suppress(MlbuildError):
                self._finish(future.result())
        stopped = [o.name for o in self.outcomes.values() if o.status is Status.INTERRUPTED]
        what = f"; stopped {', '.join(stopped)}" if stopped else ""
        raise InterruptError(f"interrupted{what}; finished steps stay cached")

    def _blocked_by(self, name: str) -> str | None:
        """The failed step that keeps ``name`` from running, if any."""
        for upstream in self.graph.steps[name].upstream:
            outcome = self.outcomes.get(upstream)
            if outcome is not None and outcome.status is Status.FAILED:
                return upstream
            if outcome is not None and outcome.status is Status.SKIPPED:
                blocked = self._blocked_by(upstream)
                if blocked is not None:
                    return blocked
        return None

    def _finish(self, outcome: StepOutcome) -> None:
        if outcome.status is Status.FAILED and self.first_failure is None:
            self.first_failure = outcome.name
        masked = self.reporter.masked(outcome)
        self.outcomes[outcome.name] = masked
        self.reporter.inner.step_finished(masked)


def _on_stop_signals(cancelled: threading.Event, deciding: threading.Event) -> dict[int, Any]:
    """Turn Ctrl-C, SIGTERM and SIGHUP (the terminal closed) into ``cancelled`` while steps run.

    An exception raised asynchronously in the main thread could land inside a lock held by the
    executor's bookkeeping; a flag checked by the scheduling loop cannot. But while the main
    thread itself decides a step (``deciding``: hashing its deps, checking its data) it is not
    in that loop, and a flag alone would leave a read blocked for ever (a stalled network file
    system) unstoppable: there the signal raises :class:`KeyboardInterrupt`, as it does before
    the run starts, and the run stops as it would on the flag.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(_sig: int, _frame: object) -> None:
        cancelled.set()
        if deciding.is_set():
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, stop)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
