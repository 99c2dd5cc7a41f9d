"""Where a step's process runs: the executor interface, and the registry that finds executors.

The scheduler keeps everything that makes a result trustworthy — hashing, the cache, ownership of
outputs, the run record — and asks an executor only to run one process: on this machine
(:class:`~mlbuild.exec.process.LocalExecutor`), in a Docker container, later as a Kubernetes Job.

Contract, for every executor:

- :meth:`Executor.start` returns once the process runs (or raises: an ``OSError`` or an
  :class:`~mlbuild.errors.MlbuildError` saying why it could not start; the step fails with it).
  It is called from the step's own thread, several steps at once: an executor is thread-safe.
- :meth:`RunningStep.wait` blocks in that same thread until the process has exited. Meanwhile it
  streams the output — masked with ``request.secrets`` — line by line to ``request.on_line`` and
  to ``request.log_path``, and enforces ``request.timeout`` (stop politely, then for good after a
  grace period). When it returns, nothing the step started is left running or writing.
- :meth:`RunningStep.stop` may be called from any thread, at any time, more than once: a polite
  stop now (SIGTERM), forced after the grace period (10 s). :meth:`RunningStep.abandon` stops at
  once and returns when the process is gone.
- The process runs in ``request.workspace`` (or sees it at the same path), with
  ``request.env`` and ``request.passthrough`` as its environment plus what the executor itself
  passes on (the local executor: the rest of ``os.environ``). It reads ``request.inputs`` and
  writes ``request.outputs``; an executor that isolates the process may hide everything else.
- :meth:`Executor.identity` is what, beyond the command, makes a step's result depend on where
  it ran — ``{}`` for the local executor, the resolved image id for a container. It enters the
  step's fingerprint, and ``plan`` calls it too: it must be cheap and must not start anything.
- :meth:`Executor.leftovers` is called by the next run, holding the workspace's run lock, to stop
  what a killed run of this workspace left running; it returns what it stopped, for messages.
- An executor may have a ``close()`` method: called once when a run ends, to release what
  :meth:`start` set up (the local executor's watchdog). A run creates its executors afresh.

Executors are found by name through :data:`EXECUTORS`, dotted paths imported on first use, so a
run that uses only local steps never imports the docker SDK.
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from mlbuild.errors import UsageError
from mlbuild.masking import Secrets


@dataclass(frozen=True)
class ProcessRequest:
    """One step's process, as the scheduler asks for it."""

    step: str  # the step's name
    argv: list[str]  # the command (["/bin/sh", "-c", cmd] for a string cmd)
    workspace: Path  # the workspace root, the process's working directory
    # what the step declares + PYTHONUNBUFFERED + MLBUILD_* (not os.environ)
    env: dict[str, str]
    # host variables passed through as they are: the secrets' values, by name; an executor adds
    # what else of the host it passes on (the local executor: the rest of os.environ, PATH, HOME…)
    passthrough: dict[str, str]
    # workspace-relative paths it reads (deps, datasets, params files, .mlbuild/params/STEP.json)
    inputs: list[str]
    outputs: list[str]  # workspace-relative paths it writes (already removed or kept per persist)
    log_path: Path
    secrets: Secrets  # mlbuild.masking: to mask its output
    timeout: float | None
    on_line: Callable[[str], None]  # each line of output, masked
    options: Mapping[str, Any]  # the step's executor options from the recipe (image, network…)


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    timed_out: bool
    stopped: bool  # ended by stop() (Ctrl-C, SIGTERM, SIGHUP)
    cut: bool  # output still arriving after the process exited was cut


class RunningStep(Protocol):
    ident: str  # "pid 1234" / "container 3f2a9c…": for messages and leftovers

    def wait(self) -> ProcessResult:
        """Block: stream and log the output, enforce the timeout; return once it exited."""
        ...

    def stop(self) -> None:
        """Polite stop, then forced after a grace period; from any thread."""
        ...

    def abandon(self) -> None:
        """Stop at once (the run could not register it)."""
        ...


class Executor(Protocol):
    name: ClassVar[str]  # "local", "container"

    def identity(self, options: Mapping[str, Any]) -> dict[str, str]:
        """What enters the fingerprint of a step run here, beyond the command: ``{}`` for
        local; the resolved image id for a container (re-tagging an image re-runs the step).
        Called by ``plan`` too."""
        ...

    def start(self, request: ProcessRequest) -> RunningStep: ...

    def leftovers(self, workspace: Path) -> list[str]:
        """Stop what a killed run of this workspace left running (processes, containers);
        what was stopped."""
        ...


GRACE_SECONDS = 10.0  # between a polite stop (SIGTERM) and a forced one (SIGKILL)

# name → "module:Class"; an executor is a new module and a line here, never a scheduler edit
EXECUTORS: dict[str, str] = {
    "local": "mlbuild.exec.process:LocalExecutor",
    "clean": "mlbuild.exec.clean:CleanExecutor",
    "container": "mlbuild.exec.container:ContainerExecutor",
}
DEFAULT = "local"


def executor_class(name: str) -> type[Executor]:
    """The class registered as ``name``, imported now. A missing optional library is reported
    by the executor's module (``mlbuild.extras.require``), with the ``pip install`` that adds it."""
    ref = EXECUTORS.get(name)
    if ref is None:
        raise UsageError(f"no executor named '{name}'; executors: {', '.join(sorted(EXECUTORS))}")
    module, _, attr = ref.partition(":")
    found: type[Executor] = getattr(importlib.import_module(module), attr)
    return found


class Executors:
    """The executors of one run, created on first use with the recipe's options for each, with
    each one's identity asked once per run."""

    def __init__(self, options: Mapping[str, Mapping[str, Any]]) -> None:
        self._options = options
        self._made: dict[str, Executor] = {}
        self._identities: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()  # steps start from several threads

    def get(self, name: str) -> Executor:
        with self._lock:
            if name not in self._made:
                self._made[name] = executor_class(name)()
            return self._made[name]

    def options(self, name: str) -> Mapping[str, Any]:
        return self._options.get(name, {})

    def identity(self, name: str) -> dict[str, str]:
        """What the fingerprint of a step run on ``name`` holds about it: nothing for the local
        executor (so fingerprints stay what they were before executors), else its name and
        :meth:`Executor.identity`."""
        with self._lock:
            if name not in self._identities:
                found = self.get(name).identity(self.options(name))
                self._identities[name] = (
                    {} if name == DEFAULT and not found else {"executor": name, **found}
                )
            return self._identities[name]

    def close(self) -> None:
        """End of the run: let each executor release what it set up."""
        with self._lock:
            made = list(self._made.values())
        for executor in made:
            close: Callable[[], None] | None = getattr(executor, "close", None)
            if close is not None:
                close()


def describe_exit(code: int) -> str:
    """``exited with code 3``, ``killed by SIGKILL`` (a negative code is a signal)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
