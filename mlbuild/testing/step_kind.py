"""The ``model-test`` kind: run one declared test as a step, its verdict as the step's result.

When the step must run, the steps it depends on (the model's, the metrics') are done; the test
is checked against the signature, its files and the recorded metrics (:mod:`.preflight`), then
its kind (:mod:`mlbuild.testing.kinds`) reaches a verdict. The verdict is the step's result data
(``{"verdict": …, "model": …}``), what ``mlbuild test``, ``run --json`` and the release gate
read, and what it measured is recorded on the run as ``tests.NAME.KEY`` metrics, with
``tests.NAME.passed``.

A failed verdict is still a verdict: it is cached like a pass (the test runs again only when the
model or the test changed, or with ``--force``) and fails the step, so that the steps after it do
not start and ``run`` exits 1 unless ``--keep-going``. A test that could not reach a verdict
(bad input, the server did not start, the model raised) is the step's error: nothing is cached,
and it is tried again next time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mlbuild.errors import RecipeError
from mlbuild.exec.context import KindContext
from mlbuild.exec.kinds import KindResult, StepStopped, failure_of
from mlbuild.graph import StepSpec
from mlbuild.testing.kinds import kind_runner
from mlbuild.testing.preflight import Preflight
from mlbuild.testing.session import Session
from mlbuild.testing.spec import BadTestInputError, CompiledTest, compile_tests
from mlbuild.testing.steps import test_name
from mlbuild.testing.verdict import Verdict

VERDICT_KEY = "verdict"
BAD_INPUT_KEY = "bad_input"  # the problems that kept the test from running


class ModelTestKind:
    name: ClassVar[str] = "model-test"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        name = test_name(spec.name)
        assert name is not None
        graph = ctx.graph
        session = Session(ctx.workspace, graph)
        try:
            try:
                test = compile_tests(graph, ctx.workspace.root, [name])[0]
                _preflight(session, test)
            except RecipeError as exc:
                # bad input, found from the recipe, the signature, the test's files and the
                # recorded metrics, which are all in the step's fingerprint: cached like a
                # verdict, so that it is reported again, not looked for again, until fixed
                return KindResult(data={BAD_INPUT_KEY: exc.message}, failure=exc.message)
            if ctx.cancelled:
                raise StepStopped()
            verdict = kind_runner(test.kind)(test, session)
            model = None
            if test.needs_model and graph.model is not None:
                source = session.source()
                model = {"name": source.name, "version": source.version}
        finally:
            session.close()
        data: dict[str, Any] = {VERDICT_KEY: verdict.to_json(), "model": model}
        return KindResult(
            data=data,
            metrics=verdict_metrics(name, verdict),
            failure=None if verdict.passed else f"test failed: {verdict.summary}",
        )

    def check_result(self, data: dict[str, Any]) -> str | None:
        """Why cached result ``data`` is not one this kind makes; None when it is."""
        failure = failure_of(data)
        if BAD_INPUT_KEY in data:
            problems = data[BAD_INPUT_KEY]
            ok = isinstance(problems, str) and failure == problems
            return None if ok else "bad-input result without its failure"
        try:
            verdict = Verdict.from_json(data.get(VERDICT_KEY))
        except ValueError as exc:
            return f"verdict: {exc}"
        if verdict.passed != (failure is None):
            return "the verdict and the step's failure disagree"
        return None

    def describe(self, spec: StepSpec) -> str:
        config = spec.config
        what = config.get("file") or config.get("path") or config.get("metric")
        return f"{config['kind']} test{f' on {what}' if what else ''}"


def verdict_metrics(name: str, verdict: Verdict) -> dict[str, Any]:
    """What the run records of a test: ``tests.NAME.passed`` and what it measured."""
    found = {f"tests.{name}.{key}": value for key, value in verdict.measured.items()}
    found[f"tests.{name}.passed"] = verdict.passed  # last: nothing measured hides it
    return found


def verdict_of(data: dict[str, Any]) -> Verdict | None:
    """The verdict a test step's result holds; None when it holds none or a malformed one."""
    try:
        return Verdict.from_json(data.get(VERDICT_KEY))
    except ValueError:
        return None


def _preflight(session: Session, test: CompiledTest) -> None:
    """The test against the signature, its files and the recorded metrics, now that the steps it
    reads are done: every problem at once, before it runs."""
    check = Preflight(session.graph, session.table)
    if test.kind == "metric":
        check.check_metric(test, session.step_metrics())
    elif test.needs_model:
        check.check(test, session.signature(), with_file=True)
    if check.problems:
        raise BadTestInputError(
            sorted(check.problems, key=lambda p: (p.file, p.line or 0, p.column or 0))
        )
