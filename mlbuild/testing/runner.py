"""``mlbuild test``: a view over the engine — run the ``tests:*`` steps, as ``mlbuild run
tests:a tests:b`` would, then read each test's verdict from its step's outcome.

::

    compile (recipe checks) ─▶ pre-flight with what is known ─▶ run the tests' steps and what
       they need (keep going: every test that can run, runs) ─▶ each test's outcome:
            ran or cached, with a verdict ─▶ passed / failed     (the verdict is its result)
            failed without one             ─▶ error              (bad input, server down, …)
            not started                    ─▶ not run            (a step it needs failed)

A test is a step of kind ``model-test`` (:mod:`mlbuild.testing.step_kind`), so the one action
cache holds its verdict under its fingerprint, ``plan`` explains why it runs, and the run record
keeps its result. Bad input known before anything runs is reported all at once, exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mlbuild.errors import MlbuildError, Problem
from mlbuild.exec import Reporter, RunSummary, Status, StepOutcome, run_steps
from mlbuild.graph import Graph, Workspace
from mlbuild.paths import overlaps
from mlbuild.runs import recorded_run
from mlbuild.store import RunRecord, RunWriter
from mlbuild.testing.preflight import Preflight
from mlbuild.testing.session import Session
from mlbuild.testing.spec import BadTestInputError, CompiledTest, compile_each, compile_tests
from mlbuild.testing.step_kind import verdict_metrics, verdict_of
from mlbuild.testing.verdict import Verdict


@dataclass
class TestResult:
    """How one test ended in this run."""

    __test__ = False  # not a pytest class, whatever its name

    test: CompiledTest
    status: str  # passed, failed, error
    cached: bool
    duration: float
    fingerprint: str | None
    reasons: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    error: str = ""

    @property
    def message(self) -> str:
        return self.verdict.summary if self.verdict is not None else self.error

    def metrics(self) -> dict[str, Any]:
        """What the run records of it: ``tests.NAME.passed`` and what it measured."""
        if self.verdict is not None:
            return verdict_metrics(self.test.name, self.verdict)
        return {f"tests.{self.test.name}.passed": False}


@dataclass(frozen=True)
class NotRun:
    """A declared test that did not run, and why (a step it needs failed)."""

    test: CompiledTest
    reason: str


@dataclass
class TestReport:
    __test__ = False

    results: list[TestResult]
    summary: RunSummary
    record: RunRecord
    model: dict[str, str] | None  # name and version of the model tested
    not_run: list[NotRun] = field(default_factory=list)  # a step they need failed first

    @property
    def passed(self) -> bool:
        return not self.summary.failed and not self.not_run


def run_tests(
    ws: Workspace,
    store: RunWriter,
    graph: Graph,
    *,
    names: list[str],
    force: bool,
    jobs: int,
    reporter: Reporter,
    tags: dict[str, str] | None = None,
    notes: str = "",
) -> TestReport:
    """Run the tests ``names`` (all when empty) of ``graph`` as a recorded run: first the steps
    they read, then every test checked against what those made (all problems at once, exit 2,
    no test run), then the tests' steps, keeping going past a failing one."""
    tests = compile_tests(graph, ws.root, names)
    _early_preflight(ws, graph, tests)
    targets = [t.step_name for t in tests]
    needed = [s for s in graph.upstream_closure(targets) if s not in targets]

    def then(summary: RunSummary) -> RunSummary:
        _full_preflight(ws, graph, tests)
        tested = run_steps(
            ws,
            graph,
            targets=targets,
            force=frozenset(targets) if force else False,
            jobs=jobs,
            reporter=reporter,
            keep_going=True,  # one failing test must not keep the others from running
        )
        return replace(
            summary,
            outcomes=[*summary.outcomes, *(o for o in tested.outcomes if o.name in targets)],
            duration=summary.duration + tested.duration,
            keep_going=True,
        )

    if not needed:  # nothing to make first (an empty target list would mean every step)
        _full_preflight(ws, graph, tests)
    recorded = recorded_run(
        ws,
        store,
        graph,
        targets=needed or targets,
        force=False if needed else (frozenset(targets) if force else False),
        jobs=jobs,
        reporter=reporter,
        kind="test",
        tags=tags,
        notes=notes,
        keep_going=True,
        then=then if needed else None,
    )
    outcomes = {o.name: o for o in recorded.summary.outcomes}
    results = [_result(t, outcomes[t.step_name]) for t in tests if _ended(outcomes, t)]
    failed = [o for o in recorded.summary.failed if o.name not in targets]
    why = "not run"
    if failed:
        steps = ", ".join(repr(o.name) for o in failed)
        why += f": step {steps} failed" + (f" ({failed[0].message})" if failed[0].message else "")
    not_run = [NotRun(t, why) for t in tests if not _ended(outcomes, t)]
    models = [o.data.get("model") for o in recorded.summary.outcomes if o.name in targets]
    model = next((m for m in map(_model, models) if m is not None), None)
    return TestReport(results, recorded.summary, recorded.record, model, not_run)


def _ended(outcomes: dict[str, StepOutcome], test: CompiledTest) -> bool:
    """Whether ``test``'s step ran or was taken from the cache (not skipped, not stopped)."""
    found = outcomes.get(test.step_name)
    return found is not None and found.status not in (Status.SKIPPED, Status.INTERRUPTED)


def _result(test: CompiledTest, outcome: StepOutcome) -> TestResult:
    verdict = verdict_of(outcome.data)
    # a cached result is taken without running: the outcome gives no reason to run
    cached = outcome.status is Status.CACHED or (
        outcome.status is Status.FAILED and verdict is not None and not outcome.reasons
    )
    status = "error" if verdict is None else "passed" if verdict.passed else "failed"
    return TestResult(
        test,
        status,
        cached,
        outcome.duration,
        outcome.fingerprint,
        outcome.reasons,
        verdict,
        error="" if verdict is not None else outcome.message,
    )


def _model(data: Any) -> dict[str, str] | None:
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return {"name": str(data["name"]), "version": str(data.get("version"))}
    return None


def _early_preflight(ws: Workspace, graph: Graph, tests: list[CompiledTest]) -> None:
    """What can be checked before any step runs — the files no step makes, against the
    signature and metrics the cache already holds — so that a typo does not wait for a training
    run."""
    session = Session(ws, graph)
    try:
        signature = None
        if graph.model is not None and any(t.needs_model for t in tests):
            try:
                signature = session.signature()
            except MlbuildError:  # not built for these params yet (NotBuiltError), or damaged
                signature = graph.model.signature  # declared in the recipe, or not known yet
        _raise(known_problems(session, tests, signature, session.step_metrics()))
    finally:
        session.close()


def _full_preflight(ws: Workspace, graph: Graph, tests: list[CompiledTest]) -> None:
    """Every test against the model's signature, its files and the recorded metrics, once the
    steps it reads are done: bad input is reported all at once before any test runs."""
    session = Session(ws, graph)
    try:
        check = Preflight(graph, session.table)
        for test in tests:
            if test.kind == "metric":
                check.check_metric(test, session.step_metrics())
            elif test.needs_model:
                check.check(test, session.signature(), with_file=True)
        _raise(check.problems)
    finally:
        session.close()


def validate_tests(ws: Workspace, graph: Graph) -> list[Problem]:
    """What ``mlbuild validate`` reports about the tests without building or loading anything:
    the recipe's checks, and the files no step makes against a signature declared in the
    recipe."""
    tests, problems = compile_each(graph, ws.root)
    signature = graph.model.signature if graph.model is not None else None
    session = Session(ws, graph)
    try:
        return problems + known_problems(session, tests, signature, {})
    finally:
        session.close()


def known_problems(
    session: Session,
    tests: list[CompiledTest],
    signature: dict[str, Any] | None,
    recorded: dict[str, dict[str, Any]],
) -> list[Problem]:
    """The problems of ``tests`` that ``signature`` (None: unknown yet), the files no step
    makes and the metrics ``recorded`` so far show."""
    graph = session.graph
    produced = [o.path for s in graph.steps.values() for o in s.outs]
    check = Preflight(graph, session.table)
    for test in tests:
        if (
            test.kind == "metric"
            and test.metric_steps
            and all(s in recorded for s in test.metric_steps)
        ):
            check.check_metric(test, recorded)
        if signature is not None and test.needs_model:
            ready = test.table is not None and not any(overlaps(test.table, o) for o in produced)
            check.check(test, signature, with_file=ready)
    return check.problems


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise BadTestInputError(
            sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
        )
