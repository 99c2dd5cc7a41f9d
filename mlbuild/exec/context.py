"""What a step kind may use while it executes: :class:`KindContext`.

The context is the kind's whole view of the run: the workspace and the graph (read them, do not
change them), the step's executor (through :meth:`KindContext.run_process`), the reporter, the
run's cancellation, the secrets, and the content digests its deps were fingerprinted with — the
bytes the step's result is keyed on, readable verified from the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlbuild import atomic
from mlbuild.exec.executor import Executor, ProcessRequest, ProcessResult, describe_exit
from mlbuild.exec.kinds import StepFailure, StepStopped
from mlbuild.exec.process import CUT_NOTE
from mlbuild.graph import Graph, StepSpec, Workspace
from mlbuild.masking import Secrets
from mlbuild.params import PARAMS_ENV, nest

# registers a started process with the run (so Ctrl-C stops it), waits for it, unregisters it
Watch = Callable[[str, Any], ProcessResult]


@dataclass(frozen=True)
class ProcessRun:
    """A process that ran to its end and exited 0."""

    result: ProcessResult
    duration: float  # from start to exit


class KindContext:
    """Given to :meth:`~mlbuild.exec.kinds.StepKind.execute` for one step of one run."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        graph: Graph,
        spec: StepSpec,
        executor: Executor,
        executor_options: Mapping[str, Any],
        isolation: Mapping[str, str],
        secrets: Secrets,
        reporter: Any,  # mlbuild.exec.events.Reporter (masking)
        cancelled: threading.Event,
        watch: Watch,
        deps: Mapping[str, str | None],
    ) -> None:
        self.workspace = workspace
        self.graph = graph
        self.spec = spec
        self.executor = executor
        self.executor_options = executor_options
        self.isolation = isolation  # PATH, VIRTUAL_ENV, …: the locked environment, if isolated
        self.secrets = secrets
        self.deps = deps  # dep path → the content digest its fingerprint holds
        self._reporter = reporter
        self._cancelled = cancelled
        self._watch = watch
        self.log_path = workspace.meta / "logs" / f"{spec.name}.log"
        self.logged = False  # whether a process wrote the step's log

    @property
    def cancelled(self) -> bool:
        """The run is being stopped: finish nothing more, raise :class:`StepStopped`."""
        return self._cancelled.is_set()

    @property
    def log(self) -> str | None:
        """The step's log, as messages name it, once a process wrote it."""
        return os.path.relpath(self.log_path) if self.logged else None

    def note(self, text: str) -> None:
        """Something the kind does, shown apart from the step's output (masked)."""
        self._reporter.step_note(self.spec.name, text)

    def output(self, line: str) -> None:
        """A line of the step's own output (already masked)."""
        self._reporter.step_output(self.spec.name, line)

    def dep_digest(self, path: str) -> str:
        """The content digest dep ``path`` was fingerprinted with."""
        digest = self.deps.get(path)
        if digest is None:
            raise StepFailure(f"step '{self.spec.name}' has no dep '{path}' with a known content")
        return digest

    def run_process(
        self, argv: list[str], *, what: str = "command", env: Mapping[str, str] | None = None
    ) -> ProcessRun:
        """Run ``argv`` on the step's executor, in the workspace, to its end.

        The process gets the step's declared env, ``env``, ``PYTHONUNBUFFERED=1``,
        ``MLBUILD_STEP`` and ``MLBUILD_PARAMS`` (a JSON file of the params it selected); its
        output is masked, streamed and logged. Raises :class:`StepFailure` when it cannot start,
        times out or exits non-zero (``"{what} exited with code 3"``), :class:`StepStopped`
        when the run is cancelled.
        """
        spec = self.spec
        request = ProcessRequest(
            step=spec.name,
            argv=argv,
            workspace=self.workspace.root,
            env={**self._environment(), **(env or {})},
            passthrough=dict(self.secrets.names),
            inputs=self._inputs(),
            outputs=[o.path for o in spec.outs],
            log_path=self.log_path,
            secrets=self.secrets,
            timeout=spec.timeout,
            on_line=self.output,
            options=self.executor_options,
        )
        # not through a symlink or file an earlier step put at .mlbuild or .mlbuild/logs
        atomic.own_folder(self.log_path.parent, below=self.workspace.meta).mkdir(
            parents=True, exist_ok=True
        )
        if self.cancelled:
            raise StepStopped()
        started = time.monotonic()
        try:
            running = self.executor.start(request)
        except OSError as exc:
            raise StepFailure(f"cannot start {argv[0]!r}: {exc.strerror}") from None
        self.logged = True
        result = self._watch(spec.name, running)
        duration = time.monotonic() - started
        if result.cut:
            self.note(CUT_NOTE)
        if result.stopped or self.cancelled:
            raise StepStopped(log=self.log, duration=duration)
        if result.timed_out:
            raise StepFailure(
                f"timed out after {spec.timeout:g}s and was stopped",
                log=self.log,
                duration=duration,
            )
        if result.returncode != 0:
            raise StepFailure(
                f"{what} {describe_exit(result.returncode)}", log=self.log, duration=duration
            )
        return ProcessRun(result, duration)

    def _environment(self) -> dict[str, str]:
        """What every process of a step gets: its env, its params file, its name."""
        spec = self.spec
        params_file = self.workspace.meta / "params" / f"{spec.name}.json"
        atomic.own_folder(params_file.parent, below=self.workspace.meta).mkdir(
            parents=True, exist_ok=True
        )
        atomic.write_text(params_file, json.dumps(nest(spec.params), indent=2), sync=False)
        self._make_hydra_output_dir()
        return {
            **self.isolation,
            "PYTHONUNBUFFERED": "1",
            **spec.env,
            PARAMS_ENV: str(params_file),
            "MLBUILD_STEP": spec.name,
        }

    def _inputs(self) -> list[str]:
        spec = self.spec
        datasets = [self.graph.datasets[name].path for name in spec.data]
        params_file = os.path.relpath(self.workspace.meta / "params", self.workspace.root)
        return [*spec.deps, *datasets, f"{params_file}/{spec.name}.json"]

    def _make_hydra_output_dir(self) -> None:
        """Hydra makes its output dir before a job runs; so do we, never outside the workspace
        (the path was checked when compiling; a symlink on the way is checked here)."""
        output_dir = self.graph.hydra_output_dir
        if output_dir in (None, "."):
            return
        target = self.workspace.root / output_dir
        with contextlib.suppress(ValueError):
            target.resolve().relative_to(self.workspace.root.resolve())
            target.mkdir(parents=True, exist_ok=True)
