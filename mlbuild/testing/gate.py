"""The release gate: ``package``, ``publish`` and ``deploy`` refuse a model whose declared tests
did not pass for its exact fingerprint.

A packaging command calls :func:`require_passing_tests` before it builds anything::

    gate = require_passing_tests(ws, graph, action="package", allow_failing=allow)
    labels |= gate.labels()          # into the image's OCI labels
    tags |= gate.tags()              # onto the run's record

The gate plans each test's step (``tests:NAME``) as ``mlbuild plan`` would — its fingerprint for
the model the recipe's current outputs hold, the test's files and settings — and reads the
verdict the action cache holds under that fingerprint (the step's result). It runs no test: a
test that never ran for this model counts as not passed, so a model retrained
after its tests ran cannot slip through. ``allow_failing`` lets it through anyway; the caller
records that in the image's labels, where a reviewer or an admission policy sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlbuild.cache import ActionResult
from mlbuild.errors import MlbuildError
from mlbuild.graph import Action, Decision, Graph, Workspace, make_plan
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest, compile_tests
from mlbuild.testing.step_kind import verdict_of
from mlbuild.testing.verdict import Verdict

LABEL_PREFIX = "dev.mlbuild.tests"


class GateError(MlbuildError):
    """The model's declared tests did not all pass for it."""


@dataclass(frozen=True)
class Gate:
    """What the gate found for one model."""

    action: str  # package, publish, deploy
    model: str | None  # name and version, as `mlbuild serve` reports them
    version: str | None
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # test → its verdict's summary
    not_run: list[str] = field(default_factory=list)  # no verdict for this fingerprint
    allowed: bool = False  # --allow-failing-tests let a model through that did not pass

    @property
    def ok(self) -> bool:
        return not self.failed and not self.not_run

    @property
    def state(self) -> str:
        if not (self.passed or self.failed or self.not_run):
            return "none"  # the recipe declares no tests
        if self.ok:
            return "passed"
        return "failing-allowed" if self.allowed else "failing"

    def labels(self) -> dict[str, str]:
        """OCI labels for an image of this model: the tests' state, and which did not pass."""
        labels = {LABEL_PREFIX: self.state}
        if self.failed:
            labels[f"{LABEL_PREFIX}.failed"] = ",".join(sorted(self.failed))
        if self.not_run:
            labels[f"{LABEL_PREFIX}.not-run"] = ",".join(self.not_run)
        if self.allowed:
            labels[f"{LABEL_PREFIX}.allow-failing"] = "true"
        return labels

    def tags(self) -> dict[str, str]:
        """Tags for the record of the run that packages, publishes or deploys the model."""
        tags = {"tests": self.state}
        if self.allowed:
            tags["allow-failing-tests"] = ",".join([*sorted(self.failed), *self.not_run])
        return tags

    def findings(self) -> str:
        """Which tests failed and which did not run, for messages."""
        parts = []
        if self.failed:
            parts.append(
                "failed: " + ", ".join(f"{n} ({s})" for n, s in sorted(self.failed.items()))
            )
        if self.not_run:
            model = " for this model" if self.model else ""
            parts.append(f"not run{model}: {', '.join(self.not_run)}")
        return "; ".join(parts)

    @property
    def subject(self) -> str:
        """``model 'iris' version 3f2a…``, or ``the recipe`` when it declares no model."""
        if self.model is None:
            return "the recipe"
        return f"model '{self.model}' version {self.version}"

    def refusal(self) -> str:
        return (
            f"refusing to {self.action} {self.subject}: its tests did not pass"
            f"{' for this exact model' if self.model else ''} ({self.findings()}); run "
            "`mlbuild test` and fix "
            f"what fails, or pass --allow-failing-tests to {self.action} it anyway (recorded in "
            "the image's labels)"
        )


def check_tests(ws: Workspace, graph: Graph, *, action: str) -> Gate:
    """The state of the declared tests for the model the recipe's current outputs hold.

    Raises :class:`~mlbuild.serve.NotBuiltError` when the model's steps are not up to date."""
    tests = compile_tests(graph, ws.root)
    if not tests:
        return Gate(action, None, None)
    session = Session(ws, graph)
    try:
        model = version = None
        if graph.model is not None:
            source = session.source()
            model, version = source.name, source.version
        steps = [t.step_name for t in tests]
        plan = make_plan(ws.planner(graph), graph.upstream_closure(steps))
        decisions = {d.step: d for d in plan}
        passed: list[str] = []
        failed: dict[str, str] = {}
        not_run: list[str] = []
        for test in tests:
            found = _verdict(ws, decisions[test.step_name])
            if found is None or not _same_baseline(session, test, found):
                not_run.append(test.name)
            elif found.passed:
                passed.append(test.name)
            else:
                failed[test.name] = found.summary
    finally:
        session.close()
    return Gate(action, model, version, passed, failed, not_run)


def _same_baseline(session: Session, test: CompiledTest, verdict: Verdict) -> bool:
    """A test against the version under an alias runs every time (the alias moves outside the
    workspace), and the gate runs none: its last verdict counts only if it was reached against
    the version under the alias now (``baseline_version``, absent when there was none)."""
    baseline = session.baseline(test)
    if baseline is None:
        return True
    return verdict.measured.get("baseline_version") == baseline.version


def _verdict(ws: Workspace, decision: Decision) -> Verdict | None:
    """The verdict cached for the test's step as planned now; None when none is (its inputs
    changed since, or a step it needs must run first: PENDING, no fingerprint yet)."""
    result: ActionResult | None = decision.result
    if decision.action is Action.RUN and decision.fingerprint is not None:
        result = ws.cache.actions.get(decision.fingerprint)  # always_run: the last verdict
    if result is None or decision.action is Action.PENDING:
        return None
    return verdict_of(result.data)


def require_passing_tests(
    ws: Workspace, graph: Graph, *, action: str, allow_failing: bool = False
) -> Gate:
    """:func:`check_tests`, raising :class:`GateError` unless every test passed or
    ``allow_failing`` (``--allow-failing-tests``) says to go on; the returned gate's
    :meth:`~Gate.labels` and :meth:`~Gate.tags` say which way it went."""
    gate = check_tests(ws, graph, action=action)
    if gate.ok:
        return gate
    if not allow_failing:
        raise GateError(gate.refusal())
    return Gate(
        gate.action,
        gate.model,
        gate.version,
        gate.passed,
        gate.failed,
        gate.not_run,
        allowed=True,
    )
