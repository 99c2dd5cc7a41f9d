"""Step kinds, execution side: how the steps of one kind do their work, and the registry of kinds.

A recipe section compiles into steps of a kind (:mod:`mlbuild.graph.kinds`: ``steps:`` → command
steps, ``model:`` → the model check, later ``search:``, ``tests:``, ``package:``…); each step
carries its ``kind`` and a JSON ``config``. The scheduler does the same for every kind — decides
(cached, restore, run) from the fingerprint, restores, removes and claims outputs, fetches data,
stores the declared outputs, the metrics and the kind's result data, records the run — and calls
the kind only for what is its own: :meth:`StepKind.execute` when the step must run.

Contract of :meth:`StepKind.execute`:

- It is called in the step's own thread, while other steps run in theirs: a kind is stateless or
  thread-safe. It is called only when the step must run, with its outputs already removed (or
  kept, ``persist: true``) and claimed, its datasets present and its secrets set.
- It writes the step's declared outputs (``spec.outs``, ``spec.metrics``) and nothing else of the
  workspace; once it returns, the scheduler hashes and stores them (a missing one fails the step).
- Processes are started through :meth:`KindContext.run_process`, never directly: it uses the
  step's executor, streams and logs the output, honours the timeout and stops the process on
  Ctrl-C. Work done in mlbuild's own process checks :attr:`KindContext.cancelled` often.
- Failure is an exception: :class:`StepFailure` (or any :class:`~mlbuild.errors.MlbuildError`)
  with a message for the user; :class:`StepStopped` when it stopped because the run was
  cancelled. Any other exception is a bug: the step fails with a crash log, the run goes on.
- It returns a :class:`KindResult`: ``data`` is a JSON object kept in the action cache entry and
  shown by ``run --json`` (a test's verdict, a search's best params, an image digest, the model
  check's predictions); it must not hold secrets (it is masked, but better never written).
- A result can be a failure worth caching — a test that reached a failing verdict: ``failure``
  says why. The result is stored like any (the step is not run again until its inputs change),
  and the step fails, now and each time the cached result is taken (Bazel caches a failed test
  result the same way); ``--force`` runs it again.

A kind may also have ``check_result(data) -> str | None``: whether the result data read back from
the cache (local or remote, so possibly damaged or forged) is one it could have made; a refused
entry is quarantined and the step runs again.

A kind whose work lives outside the workspace (an image on the Docker engine), or whose result
depends on how the run was asked for or on other steps' results, also has
``revalidate(spec, data, graph, workspace) -> str | None``: given a cached result's data, why it
no longer holds (the image was deleted, the model's tests fail since), or None. The
planner asks it before it takes the result as cached (:func:`external_hook`), so ``plan`` says
why the step runs again and ``run`` never answers with an image that is gone. Kinds without
it are never asked.

Kinds are found by name through :data:`KINDS`, dotted paths imported on first use: the model
check lives in :mod:`mlbuild.serve` and imports numpy only in the process it starts.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mlbuild.cache import ActionResult
from mlbuild.errors import MlbuildError
from mlbuild.graph import ExternalHook, Graph, StepSpec, Workspace

if TYPE_CHECKING:
    from mlbuild.exec.context import KindContext


@dataclass(frozen=True)
class KindResult:
    """What a step of any kind produced, beyond its declared output files."""

    data: dict[str, Any] = field(default_factory=dict)  # kept in the action cache entry
    metrics: dict[str, Any] = field(default_factory=dict)  # beside those of its metrics files
    duration: float | None = None  # its own time (a process's); None: all of execute()
    failure: str | None = None  # a failure kept with the result (kept in data under FAILURE_KEY)


FAILURE_KEY = "failure"


def failure_of(data: dict[str, Any]) -> str | None:
    """Why the step failed, when its (cached) result is a failure."""
    found = data.get(FAILURE_KEY)
    return found if isinstance(found, str) else None


class StepFailure(MlbuildError):
    """The step failed; ``message`` says why, ``log`` names its log when it has one."""

    def __init__(self, message: str, *, log: str | None = None, duration: float = 0.0) -> None:
        super().__init__(message)
        self.log = log
        self.duration = duration


class StepStopped(Exception):
    """The step stopped because the run was cancelled (Ctrl-C, SIGTERM, SIGHUP)."""

    def __init__(self, *, log: str | None = None, duration: float = 0.0) -> None:
        super().__init__("stopped")
        self.log = log
        self.duration = duration


class StepKind(Protocol):
    name: ClassVar[str]  # "command", "model-check"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        """Do the step's work (see the module's contract)."""
        ...

    def describe(self, spec: StepSpec) -> str:
        """One line for ``plan`` and ``status``: ``python src/train.py``, ``check model iris
        on data/sample.csv``."""
        ...


# kind name → "module:Class"; a new kind is a module and a line here (and its section compiler
# in mlbuild.graph.kinds.SECTIONS), never an edit of the scheduler
KINDS: dict[str, str] = {
    "command": "mlbuild.exec.command:CommandKind",
    "model-check": "mlbuild.serve.check.kind:ModelCheckKind",
    "model-test": "mlbuild.testing.step_kind:ModelTestKind",
    "package-bundle": "mlbuild.package.kind:BundleKind",
    "package-image": "mlbuild.package.kind:ImageKind",
    "search": "mlbuild.search.kind:SearchKind",
}

# kinds whose steps, once up to date in a run (ran, restored or cached), change what later steps
# of the run take: :meth:`SettlingKind.settled` is called then, in the step's thread, before any
# step after it starts (the search: its best params, taken by ``params_from`` steps)
SETTLING: set[str] = {"search"}


class SettlingKind(Protocol):
    def settled(
        self, spec: StepSpec, data: dict[str, Any], workspace: Workspace, graph: Graph
    ) -> None:
        """Step ``spec`` is up to date with result ``data``: update what later steps of
        ``graph`` take from it (in place). Raises :class:`~mlbuild.errors.MlbuildError` to fail
        the step."""
        ...


_loaded: dict[str, StepKind] = {}
_lock = threading.Lock()


def step_kind(name: str) -> StepKind:
    """The kind registered as ``name``, imported on first use."""
    with _lock:
        found = _loaded.get(name)
        if found is not None:
            return found
        ref = KINDS.get(name)
        if ref is None:
            raise MlbuildError(
                f"steps of kind '{name}' cannot run: this mlbuild knows the kinds "
                f"{', '.join(sorted(KINDS))}"
            )
        module, _, attr = ref.partition(":")
        kind: StepKind = getattr(importlib.import_module(module), attr)()
        _loaded[name] = kind
        return kind


def register_kind(name: str, ref: str) -> None:
    """Add (or replace) a kind: ``ref`` is ``"module:Class"``."""
    with _lock:
        KINDS[name] = ref
        _loaded.pop(name, None)


def settling_kind(name: str) -> SettlingKind | None:
    """The kind ``name`` if it is one of :data:`SETTLING` (imported only then)."""
    if name not in SETTLING:
        return None
    kind: Any = step_kind(name)
    settling: SettlingKind = kind
    return settling


def describe(spec: StepSpec) -> str:
    """The kind's line for ``spec``; the kind's name when the kind cannot say."""
    try:
        return step_kind(spec.kind).describe(spec)
    except MlbuildError:
        return spec.kind


def external_hook(graph: Graph, workspace: Workspace) -> ExternalHook:
    """The planner's question to each step's kind: does a cached result still hold outside the
    workspace? Only kinds named in :data:`EXTERNAL` are asked (never ``command``)."""

    def revalidate(spec: StepSpec, result: ActionResult) -> str | None:
        if spec.kind not in EXTERNAL:
            return None
        check = getattr(step_kind(spec.kind), "revalidate", None)
        if check is None:
            return None
        reason: str | None = check(spec, result.data, graph, workspace)
        return reason

    return revalidate


# the kinds whose results live outside the workspace (with a ``revalidate`` method): named here
# so that a plan of command steps imports no other kind
EXTERNAL: set[str] = {"package-bundle", "package-image"}
