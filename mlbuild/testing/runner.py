"""``mlbuild test``: bring what the tests read up to date, check them all, then run each test that
has no verdict for its fingerprint — all within one recorded run (kind ``test``).

::

    compile (recipe checks) ─▶ pre-flight with what is known ─▶ run the steps the tests need
       ─▶ pre-flight everything (signature, files, metrics) ─▶ for each test:
            fingerprint ─▶ verdict in the cache? ── yes ─▶ cached
                                               └─ no ─▶ run the kind ─▶ store the verdict

Bad input is reported before any test runs, all at once, exit code 2. A test that fails is a
verdict, cached like a pass (a test re-runs only when the model or the test changed); a test
that could not run (the server did not start) is an error and is tried again next time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from mlbuild.errors import InterruptError, MlbuildError, Problem, RecipeError
from mlbuild.exec import Reporter, RunSummary, Status, StepOutcome
from mlbuild.graph import Graph, Workspace
from mlbuild.paths import overlaps
from mlbuild.runs import recorded_run
from mlbuild.store import RunRecord, RunWriter
from mlbuild.testing.fingerprint import (
    code_files,
    components,
    digests,
    explain,
    fingerprint,
    model_digest,
)
from mlbuild.testing.kinds import kind_runner
from mlbuild.testing.preflight import Preflight
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest, compile_each, compile_tests
from mlbuild.testing.verdict import Verdict
from mlbuild.testing.verdicts import cached_verdict, last_components, note_cached, store_verdict


@dataclass
class TestResult:
    """How one test ended in this run."""

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
        found: dict[str, Any] = {}
        if self.verdict is not None:
            found |= {f"tests.{self.test.name}.{k}": v for k, v in self.verdict.measured.items()}
        found[f"tests.{self.test.name}.passed"] = (
            self.status == "passed"
        )  # nothing measured hides it
        return found


@dataclass
class TestReport:
    results: list[TestResult]
    summary: RunSummary
    record: RunRecord
    model: dict[str, str] | None  # name and version of the model tested

    @property
    def passed(self) -> bool:
        return not self.summary.failed


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
    """Run the tests ``names`` (all when empty) of ``graph`` as a recorded run."""
    tests = compile_tests(graph, ws.root, names)
    _early_preflight(ws, graph, tests)
    steps = sorted({s for t in tests for s in t.upstream}, key=list(graph.steps).index)
    state: dict[str, Any] = {}

    def then(summary: RunSummary) -> RunSummary:
        session = Session(ws, graph)
        try:
            results = _run_all(session, tests, force=force, reporter=reporter)
            state["results"] = results
            if graph.model is not None and any(t.needs_model for t in tests):
                source = session.source()
                state["model"] = {"name": source.name, "version": source.version}
        except KeyboardInterrupt:
            raise InterruptError("interrupted while testing") from None
        finally:
            session.close()
        outcomes = [_outcome(r) for r in results]
        return replace(
            summary,
            outcomes=[*summary.outcomes, *outcomes],
            duration=summary.duration + sum(r.duration for r in results),
        )

    recorded = recorded_run(
        ws,
        store,
        graph,
        targets=steps,
        force=False,
        jobs=jobs,
        reporter=reporter,
        kind="test",
        tags=tags,
        notes=notes,
        then=then,
    )
    return TestReport(
        state.get("results", []), recorded.summary, recorded.record, state.get("model")
    )


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


def _run_all(
    session: Session, tests: list[CompiledTest], *, force: bool, reporter: Reporter
) -> list[TestResult]:
    check = Preflight(session.graph, session.table)
    for test in tests:
        if test.kind == "metric":
            check.check_metric(test, session.step_metrics())
        elif test.needs_model:
            check.check(test, session.signature(), with_file=True)
    _raise(check.problems)
    return [_run_one(session, test, force=force, reporter=reporter) for test in tests]


def _run_one(
    session: Session, test: CompiledTest, *, force: bool, reporter: Reporter
) -> TestResult:
    ws = session.ws
    parts = _components(session, test)
    key = fingerprint(parts)
    found = None if force else cached_verdict(ws, key)
    if found is not None:
        note_cached(ws, test.step_name, key, parts)
        status = "passed" if found.verdict.passed else "failed"
        result = TestResult(test, status, True, 0.0, key, [], found.verdict)
        reporter.step_finished(_outcome(result))
        return result
    reasons = ["forced"] if force else explain(last_components(ws, test.step_name), parts)
    reporter.step_started(test.step_name, reasons)
    started = time.monotonic()
    try:
        verdict = kind_runner(test.kind)(test, session)
    except MlbuildError as exc:
        result = TestResult(
            test, "error", False, time.monotonic() - started, key, reasons, error=exc.message
        )
    except Exception as exc:  # a surprise in one test is that test's error, not the run's crash
        message = f"{type(exc).__name__}: {exc}"
        result = TestResult(
            test, "error", False, time.monotonic() - started, key, reasons, error=message
        )
    else:
        took = time.monotonic() - started
        store_verdict(ws, key, test.step_name, verdict, took, parts)
        status = "passed" if verdict.passed else "failed"
        result = TestResult(test, status, False, took, key, reasons, verdict)
    reporter.step_finished(_outcome(result))
    return result


def _components(session: Session, test: CompiledTest) -> dict[str, Any]:
    """What ``test``'s verdict depends on, now (see :mod:`mlbuild.testing.fingerprint`)."""
    ws, graph = session.ws, session.graph
    model = code = None
    if test.needs_model and graph.model is not None:
        model = model_digest(session.source())
        code = digests(ws.cache.hasher, code_files(ws.root, graph.model.class_ref))
    metric = None
    if test.kind == "metric":
        value = session.metric(test)
        metric = (
            None if value is None else {"step": value.step, "key": value.key, "value": value.value}
        )
    baseline = session.baseline(test) if test.kind == "metric" else None
    lock = ws.cache.hasher.digest(graph.lock_file) if graph.lock_file else None
    return components(
        kind=test.kind,
        config=test.config,
        model=model,
        code=code or {},
        files=digests(ws.cache.hasher, test.files),
        metric=metric,
        baseline=baseline.to_json() if baseline is not None else None,
        lock=lock.value if lock is not None else None,
    )


def fingerprints_now(session: Session, tests: list[CompiledTest]) -> dict[str, str]:
    """Each test's fingerprint for the model and files as they are now (for the gate)."""
    return {test.name: fingerprint(_components(session, test)) for test in tests}


def _outcome(result: TestResult) -> StepOutcome:
    if result.status == "passed":
        status = Status.CACHED if result.cached else Status.RAN
    else:
        status = Status.FAILED
    reasons = ["verdict from the cache"] if result.cached else result.reasons
    message = "" if result.status == "passed" else result.message
    return StepOutcome(
        name=result.test.step_name,
        status=status,
        duration=result.duration,
        reasons=reasons,
        fingerprint=result.fingerprint,
        metrics=result.metrics(),
        message=message,
    )


class BadTestInputError(RecipeError):
    """Problems in the tests' inputs — the recipe's tests section and the files it names."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        files = sorted({p.file for p in problems})
        count = len(problems)
        self.message = "\n".join(
            [
                *(p.render() for p in problems),
                f"{count} problem{'s' if count != 1 else ''} in {', '.join(files)}; no test ran",
            ]
        )


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise BadTestInputError(
            sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
        )
