"""Run a graph's steps as local child processes, independent steps in parallel.

Steps are scheduled with ``graphlib``: a step starts when every step it depends on is done. Each is
decided just before it starts (cached, restore, run), so a step after one that reproduced identical
outputs is a cache hit (early cutoff). A failed step stops its dependents; the others go on, and
what finished stays cached. Ctrl-C, SIGTERM and SIGHUP stop every child and raise
:class:`InterruptError`; if mlbuild dies outright, :mod:`mlbuild.exec.leftovers` stops them.

One step, one error policy: whatever goes wrong inside a step — a user's mistake, a full disk, an
unreadable output, a bug in mlbuild — is that step's failure, with a message; the other steps'
outcomes stand. Everything reported is masked with the recipe's secrets on its way out.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.cache import (
    ActionResult,
    CorruptObjectError,
    MissingObjectError,
    OutRecord,
    remove,
)
from mlbuild.cache.remote import RemoteCache
from mlbuild.crash import write_crash_log
from mlbuild.errors import DiskFullError, InterruptError, MlbuildError
from mlbuild.exec.events import MaskingReporter, Reporter, RunSummary, Status, StepOutcome
from mlbuild.exec.leftovers import Tracker
from mlbuild.exec.metrics import read_metrics
from mlbuild.exec.ownership import Ownership
from mlbuild.exec.process import CUT_NOTE, ProcessResult, StepProcess, describe_exit
from mlbuild.exec.remote_steps import RemoteSteps
from mlbuild.graph import (
    Action,
    Decision,
    Graph,
    StepRecord,
    StepSpec,
    Workspace,
    unrestorable,
)
from mlbuild.masking import Secrets, remember
from mlbuild.params import PARAMS_ENV, nest
from mlbuild.sizes import size

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _stage(target: Path, data: bytes) -> str:
    """``data`` written and synced to a temporary file beside ``target``, with its permissions;
    its name, for ``os.replace``. Nothing is left behind if writing fails (a full disk)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def _on_stop_signals(cancelled: threading.Event) -> dict[int, Any]:
    """Turn Ctrl-C, SIGTERM and SIGHUP (the terminal closed) into ``cancelled`` while steps run.

    An exception raised asynchronously in the main thread could land inside a lock held by the
    executor's bookkeeping; a flag checked by the scheduling loop cannot.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, lambda _sig, _frame: cancelled.set())
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


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
    force: bool,
    jobs: int,
    reporter: Reporter,
    remote: RemoteCache | None = None,
) -> RunSummary:
    """Bring ``targets`` (every step if empty) and what they depend on up to date; with
    ``remote``, look steps up there after a local miss and upload what runs."""
    return _Run(workspace, graph, targets, force, jobs, reporter, remote).execute()


class _Run:
    def __init__(
        self,
        workspace: Workspace,
        graph: Graph,
        targets: list[str],
        force: bool,
        jobs: int,
        reporter: Reporter,
        remote: RemoteCache | None,
    ) -> None:
        self.ws = workspace
        self.graph = graph
        self.names = graph.upstream_closure(targets or list(graph.steps))
        self.planner = workspace.planner(
            graph, force=set(self.names) if force else set(), remote=remote
        )
        self.fence = workspace.fence(graph)  # re-checks each path just before it is written
        self.owned = Ownership(workspace)  # removes only outputs mlbuild made or can restore
        self.jobs = max(1, jobs)
        self.secrets = graph_secrets(graph)
        remember(self.secrets)  # for error messages and crash logs far from here
        self.reporter = MaskingReporter(reporter, self.secrets)
        self.tracker = Tracker(workspace.meta)
        self.outcomes: dict[str, StepOutcome] = {}
        self.running: dict[str, StepProcess] = {}
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.remote = RemoteSteps(remote, workspace.cache, self.reporter.step_note)

    def execute(self) -> RunSummary:
        started = time.monotonic()
        self.planner.check_inputs(self.names)
        self._write_params_files()
        selected = set(self.names)
        sorter = TopologicalSorter(
            {n: [u for u in self.graph.steps[n].upstream if u in selected] for n in self.names}
        )
        sorter.prepare()
        pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="mlbuild-step")
        futures: dict[Future[StepOutcome], str] = {}
        previous = _on_stop_signals(self.cancelled)
        try:
            while sorter.is_active() and not self.cancelled.is_set():
                for name in sorter.get_ready():
                    blocked = self._blocked_by(name)
                    if blocked:
                        self._finish(
                            StepOutcome(
                                name, Status.SKIPPED, message=f"not run: '{blocked}' failed"
                            )
                        )
                        sorter.done(name)
                    else:
                        futures[pool.submit(self._step, name)] = name
                if not futures:
                    continue
                done, _ = wait(futures, timeout=0.25, return_when=FIRST_COMPLETED)
                for future in done:
                    name = futures.pop(future)
                    self._finish(future.result())
                    sorter.done(name)
            if self.cancelled.is_set():
                self._stop(futures)
        except KeyboardInterrupt:  # before the handlers were in place, or a non-main thread
            self.cancelled.set()
            self._stop(futures)
        finally:
            _restore_signals(previous)
            pool.shutdown(wait=True, cancel_futures=True)
            report = self.remote.finish(cancelled=self.cancelled.is_set())
            self.tracker.close()
            self.ws.save_state()
        ordered = [self.outcomes[n] for n in self.names if n in self.outcomes]
        return RunSummary(
            ordered,
            time.monotonic() - started,
            self.graph.overrides,
            self.ws.cache.hasher.stats,
            self.planner.used_data(self.names),
            report,
        )

    def _stop(self, futures: dict[Future[StepOutcome], str]) -> None:
        """Stop every running step (SIGTERM, then SIGKILL), wait for them, and raise."""
        with self.lock:
            stopping = list(self.running.values())
        for proc in stopping:
            proc.stop()  # SIGTERM now; the step's thread escalates to SIGKILL after the grace
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
                return self._blocked_by(upstream)
        return None

    def _finish(self, outcome: StepOutcome) -> None:
        masked = self.reporter.masked(outcome)
        self.outcomes[outcome.name] = masked
        self.reporter.inner.step_finished(masked)

    def _step(self, name: str) -> StepOutcome:
        spec = self.graph.steps[name]
        started = time.monotonic()
        try:
            # an earlier step may have changed the tree (a directory now a symlink out of the
            # repository): check this step's paths again before anything reads or writes them
            for dep in spec.deps:
                self.fence.check(dep, writes=False)
            for out in spec.outs:
                self.fence.target(out.path)
            decision = self.remote.fetched(name, self.planner.decide(spec), self._waiting(spec))
            if decision.action is Action.CACHED:
                assert decision.fingerprint is not None and decision.result is not None
                self.ws.cache.actions.touch(decision.fingerprint)
                return StepOutcome(
                    name,
                    Status.CACHED,
                    fingerprint=decision.fingerprint,
                    metrics=decision.result.metrics,
                )
            if decision.action is Action.RESTORE:
                return self._restore(spec, decision)
            return self._run(spec, decision)
        except MlbuildError as exc:
            message = exc.message
        except OSError as exc:  # a full disk, an output that is a symlink loop, …
            message = _describe(exc)
        except Exception as exc:  # a bug in mlbuild: this step fails, the others go on
            log = write_crash_log(self.ws.meta / "logs", sys.argv[1:])
            where = f"the traceback is in {_relative(log)}" if log else "no log could be written"
            message = f"internal error: {type(exc).__name__}: {exc} (a bug in mlbuild; {where})"
        return StepOutcome(name, Status.FAILED, time.monotonic() - started, message=message)

    def _restore(self, spec: StepSpec, decision: Decision) -> StepOutcome:
        assert decision.result is not None and decision.fingerprint is not None
        started = time.monotonic()
        restoring = {p: r.digest for p, r in decision.result.outs.items() if r.cached}
        self._may_replace(spec, list(restoring))
        with self.ws.cache.writing(self._waiting(spec)):
            self.owned.claim(restoring)
            unusable = self._restore_outputs(spec, decision.result)
            if unusable is None:
                self.owned.settle(restoring)
                self.ws.cache.actions.touch(decision.fingerprint)
                self._remember(spec, decision, decision.result, "restored")
        if unusable is not None:
            return self._run(spec, replace(decision, action=Action.RUN, reasons=[unusable]))
        return StepOutcome(
            spec.name,
            Status.RESTORED,
            time.monotonic() - started,
            decision.reasons,
            decision.fingerprint,
            decision.result.metrics,
        )

    def _restore_outputs(self, spec: StepSpec, result: ActionResult) -> str | None:
        """Restore each cached output, verified as it is copied; if one cannot be (missing, or
        bad and now in quarantine), why the step must run instead."""
        for path, record in result.outs.items():
            if not record.cached:
                continue
            try:
                self.ws.cache.objects.restore(
                    record.digest, self.fence.target(path), record.size, fence=self.fence
                )
            except (MissingObjectError, CorruptObjectError) as exc:
                self.reporter.step_note(spec.name, f"cannot restore {path}: {exc.message}")
                return unrestorable(path, exc)
        return None

    def _run(self, spec: StepSpec, decision: Decision) -> StepOutcome:
        """Fetch the step's data, run its command, store its outputs. The reported duration is
        the command's own, from spawn to exit: mlbuild's work before it is not billed to it."""
        assert decision.fingerprint is not None
        self.reporter.step_started(spec.name, decision.reasons)
        for dataset in spec.data:  # fetch only what this step reads, only when it must run
            if self.planner.data.kind(dataset) != "file":
                self.fence.target(self.graph.datasets[dataset].path)  # DVC writes there
                self.planner.data.ensure_present(
                    dataset, lambda text: self.reporter.step_note(spec.name, text)
                )
        missing = [s for s in spec.secrets if s not in os.environ]
        if missing:
            return StepOutcome(
                spec.name,
                Status.FAILED,
                reasons=decision.reasons,
                message=f"secret {', '.join(missing)} is not set in the environment; export it "
                "before running (secrets are passed through, never stored)",
            )
        self._may_replace(spec, [o.path for o in spec.outs if not o.persist])
        self.owned.claim(o.path for o in spec.outs)  # on disk before the process starts
        for out in spec.outs:
            target = self.fence.target(out.path)
            if not out.persist:
                remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
        log_path = self.ws.meta / "logs" / f"{spec.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["/bin/sh", "-c", spec.cmd] if isinstance(spec.cmd, str) else list(spec.cmd)
        if self.cancelled.is_set():
            return StepOutcome(spec.name, Status.INTERRUPTED, reasons=decision.reasons)
        env = self._environment(spec)
        started = time.monotonic()
        try:
            proc = StepProcess(
                argv,
                cwd=self.ws.root,
                env=env,
                log_path=log_path,
                secrets=self.secrets,
                timeout=spec.timeout,
                on_line=lambda line: self.reporter.step_output(spec.name, line),
            )
        except OSError as exc:
            return StepOutcome(
                spec.name,
                Status.FAILED,
                reasons=decision.reasons,
                message=f"cannot start {argv[0]!r}: {exc.strerror}",
            )
        result = self._watch(spec.name, proc)
        duration = time.monotonic() - started
        log = os.path.relpath(log_path)
        if result.cut:
            self.reporter.step_note(spec.name, CUT_NOTE)
        if result.stopped or self.cancelled.is_set():
            return StepOutcome(spec.name, Status.INTERRUPTED, duration, decision.reasons, log=log)
        if result.timed_out:
            message = f"timed out after {spec.timeout:g}s and was stopped"
            return StepOutcome(
                spec.name, Status.FAILED, duration, decision.reasons, message=message, log=log
            )
        if result.returncode != 0:
            message = f"command {describe_exit(result.returncode)}"
            return StepOutcome(
                spec.name, Status.FAILED, duration, decision.reasons, message=message, log=log
            )
        action = self._commit(spec, decision, duration)
        self.remote.built(decision.fingerprint, action)  # uploaded in the background
        return StepOutcome(
            spec.name,
            Status.RAN,
            duration,
            decision.reasons,
            decision.fingerprint,
            action.metrics,
            log=log,
        )

    def _commit(self, spec: StepSpec, decision: Decision, duration: float) -> ActionResult:
        """Store the outputs, then the entry, then the step record — under the cache lock, so a
        ``gc`` in another clone never collects an object before the entry that keeps it."""
        assert decision.fingerprint is not None
        with self.ws.cache.writing(self._waiting(spec)):
            action = self._store(spec, duration)
            versioned = [out.path for out in spec.outs if out.dvc]
            if versioned:
                self.reporter.step_note(spec.name, f"adding {', '.join(versioned)} to DVC")
                self.planner.data.adapter().add(versioned)
            self.owned.settle({path: record.digest for path, record in action.outs.items()})
            self.ws.cache.actions.put(decision.fingerprint, action)
            self._remember(spec, decision, action, "ran")
        return action

    def _waiting(self, spec: StepSpec) -> Callable[[str], None]:
        return lambda text: self.reporter.step_note(spec.name, text)

    def _watch(self, name: str, proc: StepProcess) -> ProcessResult:
        """Wait for ``proc``, which stops with the run: on Ctrl-C, and even if mlbuild dies."""
        try:
            self.tracker.started(name, proc.pid)
        except BaseException:
            proc.abandon()
            self.tracker.ended(name, proc.pid)
            raise
        with self.lock:
            self.running[name] = proc
            cancelled = self.cancelled.is_set()
        if cancelled:  # Ctrl-C came after the spawn but before this registration: stop it too
            proc.stop()
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.running.pop(name, None)
            self.tracker.ended(name, proc.pid)

    def _write_params_files(self) -> None:
        """Write the overrides into the params files that hold their keys, before any step runs.

        A step that reads the file itself then sees exactly the values its fingerprint holds
        (the file is one of its deps). The edit stays, as ``dvc exp run -S`` leaves it: the
        workspace says which values its outputs were made with, ``git diff`` shows the change,
        and a later run without the override finds the same results cached.
        """
        root = self.ws.root.resolve()
        staged: list[tuple[str, Path, str]] = []  # all written aside first: all or none change
        try:
            for path, text in self.graph.param_writes.items():
                target = (self.ws.root / path).resolve()
                target.relative_to(root)  # checked when compiling; a symlink changed since
                data = text.encode("utf-8")
                if target.read_bytes() != data:
                    staged.append((path, target, _stage(target, data)))
        except (OSError, ValueError) as exc:
            for _, _, tmp in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            why = exc.strerror if isinstance(exc, OSError) else "it is now outside the workspace"
            raise MlbuildError(
                f"cannot write the overrides into {path}: {why}; no step ran and no params "
                "file changed"
            ) from None
        for path, target, tmp in staged:
            os.replace(tmp, target)
            self.reporter.step_note(path, "written with the overridden values")

    def _may_replace(self, spec: StepSpec, paths: list[str]) -> None:
        """Raise unless every output in ``paths`` may be written now: inside the fence (checked
        again, as the filesystem may have changed since ``plan``) and, if it exists, made by
        mlbuild or recoverable. All are checked before anything is removed."""
        declared = {o.path for o in spec.outs}
        for path in paths:
            if path not in declared:  # an action entry read back from a shared cache
                raise MlbuildError(
                    f"the cached result of step '{spec.name}' names '{path}', which is not one "
                    "of its outputs; run it again with --force"
                )
            self.fence.target(path)
            self.owned.check_removable(path)

    def _environment(self, spec: StepSpec) -> dict[str, str]:
        params_file = self.ws.meta / "params" / f"{spec.name}.json"
        params_file.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(params_file, json.dumps(nest(spec.params), indent=2), sync=False)
        self._make_hydra_output_dir()
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **spec.env,
            PARAMS_ENV: str(params_file),
            "MLBUILD_STEP": spec.name,
        }

    def _make_hydra_output_dir(self) -> None:
        """Hydra makes its output dir before a job runs; so do we, never outside the workspace
        (the path was checked when compiling; a symlink on the way is checked here)."""
        output_dir = self.graph.hydra_output_dir
        if output_dir in (None, "."):
            return
        target = self.ws.root / output_dir
        with contextlib.suppress(ValueError):
            target.resolve().relative_to(self.ws.root.resolve())
            target.mkdir(parents=True, exist_ok=True)

    def _store(self, spec: StepSpec, duration: float) -> ActionResult:
        """Read the step's metrics, hash its outputs, put them in the object store."""
        metrics = self._metrics(spec)  # first: masking a secret rewrites the file, an output
        outs: dict[str, OutRecord] = {}
        for out in spec.outs:
            try:
                digest = self.ws.cache.hasher.digest(out.path)
            except OSError as exc:
                raise MlbuildError(f"cannot read output {out.path}: {exc.strerror}") from None
            if digest is None:
                raise MlbuildError(
                    f"step '{spec.name}' finished but did not create its declared output "
                    f"'{out.path}'; fix the command or the outs list"
                )
            if out.cache:
                try:
                    self.ws.cache.objects.put(self.ws.root / out.path, digest)
                except DiskFullError as exc:
                    raise MlbuildError(f"cannot store output {out.path}: {exc.message}") from None
                except OSError as exc:
                    need = (
                        f" (needed {size(digest.size)} at {self.ws.cache.root})"
                        if exc.errno in _NO_SPACE
                        else ""
                    )
                    raise MlbuildError(
                        f"cannot store output {out.path}: {exc.strerror}{need}"
                    ) from None
            outs[out.path] = OutRecord(digest.value, digest.size, out.cache)
        return ActionResult(spec.name, outs, metrics, duration, time.time())

    def _metrics(self, spec: StepSpec) -> dict[str, Any]:
        """The step's metrics; a secret's value in a metrics file is masked, and said so."""
        metrics: dict[str, Any] = {}
        for path in spec.metrics:
            values, note = read_metrics(self.ws.root / path, path, self.secrets)
            if note is not None:
                self.reporter.step_note(spec.name, note)
            metrics.update(values)
        return metrics

    def _remember(self, spec: StepSpec, decision: Decision, result: ActionResult, how: str) -> None:
        """Record what the workspace now holds for ``spec``: when and how long it took to make."""
        assert decision.fingerprint is not None and decision.components is not None
        record = StepRecord(
            spec.name,
            decision.fingerprint,
            decision.components,
            result.created,
            result.duration,
            how,
        )
        self.ws.records.put(record, self.planner.manifests(spec))


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
