"""One trial: a cached, recorded run of the target step with the trial's parameters as overrides.

The trial's values become Hydra overrides after the search's own; the graph for them (compiled
once per search where that is provably the same, :mod:`mlbuild.search.shape`) is run through
:func:`mlbuild.runs.recorded_run`, so steps whose inputs did not change (upstream
steps, or a whole trial whose parameters ran before) are answered from the cache and nothing is
repeated. The run is recorded with kind ``trial`` and tags naming its search, study and trial
number; the trial keeps the run's id (``run_id``). The objective is read from the target step's
metrics: a metric missing from them fails the trial, naming the files.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlbuild.errors import InterruptError, MlbuildError
from mlbuild.exec import Reporter, Status
from mlbuild.graph import Workspace
from mlbuild.runs import recorded_run
from mlbuild.search.channel import ReportChannel
from mlbuild.search.shape import TrialGraphs
from mlbuild.search.space import Scalar, suggest
from mlbuild.search.spec import SearchSpec
from mlbuild.store import RunRecord, RunWriter

if TYPE_CHECKING:
    import optuna

RETRY_OF = "retry_of"  # user attribute of a trial enqueued again after Ctrl-C


class TrialFailed(MlbuildError):
    """The trial's run failed, or its metrics hold no usable objective."""


@dataclass
class TrialResult:
    """What a worker prints about a finished trial."""

    number: int
    params: dict[str, Scalar]
    state: str  # "ran", "cached", "pruned", "failed"
    values: list[float] = field(default_factory=list)
    run_id: str | None = None
    message: str = ""
    duration: float = 0.0


class TrialObjective:
    """Optuna's objective function for a search, run in a worker's workspace copy."""

    def __init__(
        self,
        ws: Workspace,
        store: RunWriter,
        spec: SearchSpec,
        study_name: str,
        channel: ReportChannel,
        reporter: Reporter,
        on_trial: Callable[[TrialResult], None],
        graphs: TrialGraphs,
    ) -> None:
        self.ws = ws
        self.graphs = graphs
        self.store = store
        self.spec = spec
        self.study_name = study_name
        self.channel = channel
        self.reporter = reporter
        self.on_trial = on_trial
        self.on_claimed: Callable[[], None] = lambda: None

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        self.on_claimed()  # the trial exists in the storage: other workers may count it now
        started = time.monotonic()
        values = {p.key: suggest(trial, p) for p in self.spec.params}
        result = TrialResult(trial.number, values, "failed")
        try:
            objective = self._run(trial, values, result)
        except BaseException as exc:
            result.duration = time.monotonic() - started
            if isinstance(exc, KeyboardInterrupt | InterruptError):
                # Optuna fails the trial; the same parameters run first when the study resumes.
                # A second Ctrl-C (a terminal's reaches the workers, then `--jobs` forwards its
                # own) must not cut the enqueueing short.
                with _deaf_to_ctrl_c():
                    trial.study.enqueue_trial(values, user_attrs={RETRY_OF: trial.number})
                raise
            if result.state != "pruned":
                result.message = exc.message if isinstance(exc, MlbuildError) else str(exc)
                trial.set_user_attr("error", result.message)
            self.on_trial(result)
            raise
        result.duration = time.monotonic() - started
        result.values = objective
        self.on_trial(result)
        return objective[0] if len(objective) == 1 else objective

    def _run(
        self, trial: optuna.Trial, values: dict[str, Scalar], result: TrialResult
    ) -> list[float]:
        optuna = _optuna()
        spec = self.spec
        graph = self.graphs.graph(values)
        tags = {"search": spec.name, "study": self.study_name, "trial": str(trial.number)}
        writer = _TrialWriter(self.store, self.channel)
        with self.channel.attach(_judge(trial, len(spec.objectives))):
            recorded = recorded_run(
                self.ws,
                writer,
                graph,
                targets=[spec.target],
                force=False,
                jobs=1,
                reporter=self.reporter,
                kind="trial",
                tags=tags,
            )
        result.run_id = recorded.record.id
        trial.set_user_attr("run_id", recorded.record.id)
        summary = recorded.summary
        if self.channel.pruned_at is not None:
            result.state = "pruned"
            result.message = f"at step {self.channel.pruned_at}"
            raise optuna.TrialPruned(f"pruned at step {self.channel.pruned_at}")
        if summary.failed:
            first = summary.failed[0]
            log = f"; log: {first.log}" if first.log else ""
            raise TrialFailed(f"step '{first.name}' failed: {first.message}{log}")
        outcome = next(o for o in summary.outcomes if o.name == spec.target)
        executed = any(o.status is Status.RAN for o in summary.outcomes)
        objective = [self._metric(outcome.metrics, o.metric) for o in spec.objectives]
        result.state = "ran" if executed else "cached"
        return objective

    def _metric(self, metrics: dict[str, Any], key: str) -> float:
        files = ", ".join(self.spec.metrics_files)
        step = self.spec.target
        if key not in metrics:
            held = ", ".join(sorted(metrics)) or "nothing"
            raise TrialFailed(
                f"metric '{key}' is not in the metrics of step '{step}' ({files}), which hold: "
                f"{held}"
            )
        value = metrics[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TrialFailed(
                f"metric '{key}' of step '{step}' ({files}) is {value!r}, not a finite number"
            )
        return float(value)


@contextlib.contextmanager
def _deaf_to_ctrl_c() -> Iterator[None]:
    """SIGINT ignored for the duration (only the main thread may change it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _judge(trial: optuna.Trial, objectives: int) -> Callable[[float, int], bool]:
    def judge(value: float, step: int) -> bool:
        if objectives > 1:
            raise ValueError("a search with several objectives takes no intermediate values")
        trial.report(value, step)
        return bool(trial.should_prune())

    return judge


class _TrialWriter:
    """The run store, with the pruned state tagged on the trial's record."""

    def __init__(self, store: RunWriter, channel: ReportChannel) -> None:
        self._store = store
        self._channel = channel

    def start_run(self, run: RunRecord) -> None:
        self._store.start_run(run)

    def heartbeat(self, run_id: str) -> None:
        self._store.heartbeat(run_id)

    def finish_run(self, run: RunRecord) -> None:
        if self._channel.pruned_at is not None:
            run = replace(run, tags={**run.tags, "pruned": str(self._channel.pruned_at)})
        self._store.finish_run(run)


def _optuna() -> Any:
    from mlbuild.search.study import optuna_module

    return optuna_module()
