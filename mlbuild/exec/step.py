"""Bring one step up to date, whatever its kind: decide, then take it as cached, restore it, or
run it through its kind and commit what it made.

One step, one error policy: whatever goes wrong inside a step — its command, its kind's code, its
executor, a full disk, an unreadable output, a bug in mlbuild — is that step's failure, with a
message; the other steps' outcomes stand (the scheduler decides whether new ones start).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from mlbuild.crash import write_crash_log
from mlbuild.errors import MlbuildError
from mlbuild.exec.context import KindContext, Watch
from mlbuild.exec.events import MaskingReporter, Status, StepOutcome
from mlbuild.exec.executor import Executors
from mlbuild.exec.identity import executor_of
from mlbuild.exec.kinds import (
    FAILURE_KEY,
    StepFailure,
    StepStopped,
    failure_of,
    settling_kind,
    step_kind,
)
from mlbuild.exec.outputs import Outputs
from mlbuild.exec.remote_steps import RemoteSteps
from mlbuild.graph import Action, Decision, Graph, Planner, StepSpec, Workspace
from mlbuild.masking import Secrets
from mlbuild.paths import Fence


class StepRunner:
    """Runs the steps of one run, each in the thread that calls :meth:`run`."""

    def __init__(
        self,
        *,
        ws: Workspace,
        graph: Graph,
        planner: Planner,
        fence: Fence,
        outputs: Outputs,
        executors: Executors,
        override: str | None,
        isolation: dict[str, str],
        secrets: Secrets,
        reporter: MaskingReporter,
        cancelled: threading.Event,
        watch: Watch,
        remote: RemoteSteps,
    ) -> None:
        self.ws = ws
        self.graph = graph
        self.planner = planner
        self.fence = fence
        self.outputs = outputs
        self.executors = executors
        self.override = override
        self.isolation = isolation
        self.secrets = secrets
        self.reporter = reporter
        self.cancelled = cancelled
        self.watch = watch
        self.remote = remote  # the remote cache's hook: fetch a remote hit, upload what ran
        # set once a step of this run writes to the workspace (restores or executes): until
        # then the tree is the one the scheduler's check_inputs fenced, path by path
        self.tree_changed = threading.Event()

    def run(self, name: str) -> StepOutcome:
        return self._settle(self._run(name))

    def cached(self, name: str) -> StepOutcome | None:
        """``name``'s outcome when the local cache answers it as it is, decided in the calling
        thread (the scheduler's); ``None`` when the step's own thread must bring it up to date.

        On a no-op run of thousands of steps, handing each cached step to a pool thread and
        waiting for its future was most of the run. Anything but a usable local hit — a miss, a
        restore, a result the kind refuses, an error — is left to :meth:`run`, which decides
        again (asking the remote cache too) and reports it as before.
        """
        spec = self.graph.steps[name]
        if spec.problems:
            return None
        try:
            if self.tree_changed.is_set():
                self._fence(spec)
            decision = self.planner.decide(spec, cached_only=True)
        except Exception:  # the step's own thread meets it again and reports it
            return None
        if decision.action is not Action.CACHED or self._refused(spec, decision) is not None:
            return None
        assert decision.fingerprint is not None
        self.ws.cache.actions.touch(decision.fingerprint)
        return self._settle(self._outcome(spec, Status.CACHED, decision, 0.0))

    def _settle(self, outcome: StepOutcome) -> StepOutcome:
        if outcome.status in (Status.RAN, Status.CACHED, Status.RESTORED):
            settle = settling_kind(outcome.kind)
            if settle is not None:  # what later steps take from it (a search's best params)
                try:
                    settle.settled(
                        self.graph.steps[outcome.name], outcome.data, self.ws, self.graph
                    )
                except MlbuildError as exc:
                    return replace(outcome, status=Status.FAILED, message=exc.message)
        return outcome

    def _run(self, name: str) -> StepOutcome:
        spec = self.graph.steps[name]
        started = time.monotonic()
        decision: Decision | None = None
        log: str | None = None
        try:
            if spec.problems:  # found after the run started (best params that no longer fit)
                raise MlbuildError("; ".join(message for _, message in spec.problems))
            if self.tree_changed.is_set():
                # an earlier step may have changed the tree (a directory now a symlink out of
                # the repository): check this step's paths again before anything reads or
                # writes them. Before any step wrote, check_inputs has just checked them all
                # (on a no-op run of thousands of steps, the second check was half its time)
                self._fence(spec)
            decision = self.remote.fetched(
                name, self.planner.decide(spec), lambda text: self.reporter.step_note(name, text)
            )
            decision = self._usable(spec, decision)
            if decision.action is Action.CACHED:
                assert decision.fingerprint is not None and decision.result is not None
                self.ws.cache.actions.touch(decision.fingerprint)
                return self._outcome(spec, Status.CACHED, decision, 0.0)
            if decision.action is Action.RESTORE:
                self._tree_changed()
                unusable = self.outputs.restore(spec, decision)
                if unusable is None:
                    return self._outcome(spec, Status.RESTORED, decision, _since(started))
                decision = replace(decision, action=Action.RUN, reasons=[unusable])
            return self._execute(spec, decision)
        except StepStopped as stop:
            reasons = decision.reasons if decision is not None else []
            return StepOutcome(
                name, Status.INTERRUPTED, stop.duration, reasons, log=stop.log, kind=spec.kind
            )
        except StepFailure as exc:
            message, log, took = exc.message, exc.log, exc.duration
        except MlbuildError as exc:
            message, took = exc.message, _since(started)
        except OSError as exc:  # a full disk, an output that is a symlink loop, …
            message, took = _describe(exc), _since(started)
        except Exception as exc:  # a bug in mlbuild or in a kind: this step fails, the rest stand
            crash = write_crash_log(self.ws.meta / "logs", sys.argv[1:])
            where = f"the traceback is in {_relative(crash)}" if crash else "no log was written"
            message = f"internal error: {type(exc).__name__}: {exc} (a bug in mlbuild; {where})"
            took = _since(started)
        reasons = decision.reasons if decision is not None and decision.action is Action.RUN else []
        return StepOutcome(
            name, Status.FAILED, took, reasons, message=message, log=log, kind=spec.kind
        )

    def _tree_changed(self) -> None:
        self.tree_changed.set()
        self.planner.tree_changed()  # its digests of this command's start no longer hold

    def _fence(self, spec: StepSpec) -> None:
        for dep in spec.deps:
            self.fence.check(dep, writes=False)
        for out in spec.outs:
            self.fence.target(out.path)

    def _refused(self, spec: StepSpec, decision: Decision) -> str | None:
        """Why the step's kind refuses the result data of a cached ``decision``, if it does."""
        result = decision.result
        if decision.action is not Action.CACHED or result is None or not result.data:
            return None
        check = getattr(step_kind(spec.kind), "check_result", None)
        why: str | None = check(result.data) if check is not None else None
        return why

    def _usable(self, spec: StepSpec, decision: Decision) -> Decision:
        """``decision``, or a run when the kind refuses the result data the cache holds (a
        verdict of the wrong shape): that entry is moved to quarantine, never used."""
        why = self._refused(spec, decision)
        if why is None:
            return decision
        assert decision.fingerprint is not None
        self.ws.cache.actions.discard(decision.fingerprint)
        return replace(
            decision,
            action=Action.RUN,
            reasons=[f"its cached result was unusable ({why}) and was quarantined"],
            result=None,
        )

    def _execute(self, spec: StepSpec, decision: Decision) -> StepOutcome:
        """Fetch the step's data, make its outputs ready, run its kind, commit the outputs."""
        assert decision.fingerprint is not None and decision.components is not None
        self._tree_changed()  # DVC fetches, outputs are removed, the step runs
        self.reporter.step_started(spec.name, decision.reasons)
        for dataset in spec.data:  # fetch only what this step reads, only when it must run
            if self.planner.data.kind(dataset) != "file":
                self.fence.target(self.graph.datasets[dataset].path)  # DVC writes there
                self.planner.data.ensure_present(
                    dataset, lambda text: self.reporter.step_note(spec.name, text)
                )
        missing = [s for s in spec.secrets if s not in os.environ]
        if missing:
            raise MlbuildError(
                f"secret {', '.join(missing)} is not set in the environment; export it "
                "before running (secrets are passed through, never stored)"
            )
        self.outputs.prepare(spec)
        if self.cancelled.is_set():
            raise StepStopped()
        name = executor_of(spec, self.override)
        ctx = KindContext(
            workspace=self.ws,
            graph=self.graph,
            spec=spec,
            executor=self.executors.get(name),
            executor_options=self.executors.options(name),
            isolation=self.isolation,
            secrets=self.secrets,
            reporter=self.reporter,
            cancelled=self.cancelled,
            watch=self.watch,
            deps=decision.components["deps"],
        )
        began = time.monotonic()
        done = step_kind(spec.kind).execute(spec, ctx)
        if done.failure is not None:  # a failure worth caching (a failed test's verdict)
            done = replace(done, data={**done.data, FAILURE_KEY: done.failure})
        duration = done.duration if done.duration is not None else _since(began)
        action = self.outputs.commit(spec, decision, duration, done)
        self.remote.built(decision.fingerprint, action)  # uploaded in the background
        failure = failure_of(action.data)
        return StepOutcome(
            spec.name,
            Status.RAN if failure is None else Status.FAILED,
            duration,
            decision.reasons,
            decision.fingerprint,
            action.metrics,
            message=failure or "",
            log=ctx.log,
            kind=spec.kind,
            data=action.data,
            outs=action.outs,
        )

    def _outcome(
        self, spec: StepSpec, status: Status, decision: Decision, duration: float
    ) -> StepOutcome:
        result = decision.result
        assert result is not None
        reasons = decision.reasons if status is Status.RESTORED else []
        failure = failure_of(result.data)
        if failure is not None:  # the result was a failure when it was made: it still is
            status = Status.FAILED
            failure += " (a cached result: --force runs it again)"
        return StepOutcome(
            spec.name,
            status,
            duration,
            reasons,
            decision.fingerprint,
            result.metrics,
            message=failure or "",
            kind=spec.kind,
            data=result.data,
            outs=result.outs,
        )


def _since(started: float) -> float:
    return time.monotonic() - started


def _describe(exc: OSError) -> str:
    """``No space left on device: .mlbuild/steps/train.json``."""
    reason = exc.strerror or str(exc)
    return f"{reason}: {_relative(Path(exc.filename))}" if exc.filename else reason


def _relative(path: Path | None) -> str:
    """``path`` relative to the current directory when under it (shorter in messages)."""
    if path is None:
        return ""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
