"""What the executor reports while it works, and what a run amounts to at the end."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from mlbuild.cache import HashStats, OutRecord
from mlbuild.data import DataVersion
from mlbuild.exec.metrics import merge_metrics
from mlbuild.masking import Secrets

# the remote package (http.client, ssl) is imported only when a remote cache is used
if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteReport


class Status(enum.StrEnum):
    CACHED = "cached"
    RESTORED = "restored"
    RAN = "ran"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream step failed
    INTERRUPTED = "interrupted"


@dataclass
class StepOutcome:
    name: str
    status: Status
    duration: float = 0.0
    reasons: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    log: str | None = None
    kind: str = "command"
    data: dict[str, Any] = field(default_factory=dict)  # what its kind reported (KindResult)
    # the outputs of the action-cache entry it ran into or was found in; ``None`` when not
    # known (the run record then reads the entry again)
    outs: dict[str, OutRecord] | None = None


@dataclass
class RunSummary:
    outcomes: list[StepOutcome]
    duration: float
    overrides: list[str]
    hashing: HashStats
    data: list[DataVersion] = field(default_factory=list)
    keep_going: bool = False  # whether steps went on starting after a failure
    remote: RemoteReport | None = None  # what was fetched from and uploaded to a remote cache

    @property
    def failed(self) -> list[StepOutcome]:
        return [o for o in self.outcomes if o.status is Status.FAILED]

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics: clashing keys are prefixed with their step (see ``metrics.py``)."""
        return merge_metrics([(o.name, o.metrics) for o in self.outcomes if o.metrics])


class Reporter(Protocol):
    """Receives events from executor threads; implementations serialise their own output."""

    def step_started(self, name: str, reasons: list[str]) -> None: ...

    def step_output(self, name: str, line: str) -> None: ...

    def step_note(self, name: str, text: str) -> None:
        """Something mlbuild does for the step (fetching its data), shown apart from its output."""

    def step_finished(self, outcome: StepOutcome) -> None: ...


class MaskingReporter:
    """A :class:`Reporter` that masks secrets out of every event before passing it on.

    A step's output lines arrive masked already: they are masked as a stream, where a secret can
    span lines and reads (:class:`mlbuild.masking.StreamMasker`).
    """

    def __init__(self, inner: Reporter, secrets: Secrets) -> None:
        self.inner = inner
        self.secrets = secrets

    def masked(self, outcome: StepOutcome) -> StepOutcome:
        if not self.secrets:
            return outcome
        return replace(
            outcome,
            reasons=[self.secrets.text(r) for r in outcome.reasons],
            metrics=self.secrets.data(outcome.metrics),
            message=self.secrets.text(outcome.message),
            data=self.secrets.data(outcome.data),
        )

    def step_started(self, name: str, reasons: list[str]) -> None:
        self.inner.step_started(name, [self.secrets.text(r) for r in reasons])

    def step_output(self, name: str, line: str) -> None:
        self.inner.step_output(name, line)

    def step_note(self, name: str, text: str) -> None:
        self.inner.step_note(name, self.secrets.text(text))

    def step_finished(self, outcome: StepOutcome) -> None:
        self.inner.step_finished(self.masked(outcome))
