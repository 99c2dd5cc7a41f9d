"""The release gate: a model ships only when every declared test passed for that exact model.

``package``, ``publish`` and ``deploy`` call :func:`mlbuild.testing.require_passing_tests` (the
packaging commands are built on another branch; here the gate is called as they call it, on a
real workspace whose tests ran through the real CLI). ``mlbuild test --check`` applies the same
gate from the command line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from mlbuild.graph import Graph
from mlbuild.graph import Workspace as Engine
from mlbuild.testing import Gate, GateError, require_passing_tests
from tests.conftest import Workspace
from tests.testing.conftest import mlbuild, run_json, toy_recipe

pytestmark = pytest.mark.slow

TESTS = """
accuracy: {kind: metric, metric: accuracy, min: 0.8}
golden: {kind: cases, file: tests/cases.csv, name_column: case}
"""


@contextmanager
def engine(ws: Workspace, *overrides: str) -> Iterator[tuple[Engine, Graph]]:
    """The workspace and its graph, as a packaging command in that directory opens them."""
    here = os.getcwd()
    os.chdir(ws.root)
    try:
        found = Engine.find(ws.root)
        try:
            yield found, found.graph(list(overrides))
        finally:
            found.save_state()
    finally:
        os.chdir(here)


def gate(ws: Workspace, *overrides: str, allow: bool = False) -> Gate:
    with engine(ws, *overrides) as (found, graph):
        return require_passing_tests(found, graph, action="package", allow_failing=allow)


def refusal(ws: Workspace, *overrides: str) -> str:
    with pytest.raises(GateError) as caught:
        gate(ws, *overrides)
    return caught.value.message


def test_tests_that_did_not_run_for_this_model_keep_it_from_shipping(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS))
    assert mlbuild(toy, "run", "train", "evaluate").returncode == 0  # built, never tested
    message = refusal(toy)
    version = message.split("version ")[1].split(":")[0]
    assert message == (
        f"refusing to package model 'toy' version {version}: its tests did not pass for this exact "
        "model (not run for this model: accuracy, golden); run `mlbuild test` and fix what "
        "fails, or pass --allow-failing-tests to package it anyway (recorded in the image's "
        "labels)"
    )
    check = mlbuild(toy, "test", "--check")
    assert (check.returncode, check.stdout) == (1, "")
    assert check.stderr == (
        f"mlbuild: the tests of model 'toy' version {version} did not pass for this exact model "
        "(not run for this model: accuracy, golden); run `mlbuild test`\n"
    )

    assert run_json(toy)["code"] == 0
    passed = gate(toy)
    assert (passed.ok, passed.state, passed.passed) == (True, "passed", ["accuracy", "golden"])
    assert passed.labels() == {"dev.mlbuild.tests": "passed"}
    assert passed.tags() == {"tests": "passed"}
    ok = mlbuild(toy, "test", "--check")
    assert (ok.returncode, ok.stdout) == (
        0,
        f"all 2 tests passed for model 'toy' version {version}\n",
    )


def test_a_retrained_model_needs_its_own_verdicts(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS))
    assert run_json(toy)["code"] == 0
    # the model changes (another weight) and is built, not tested: its tests' verdicts are for
    # the old model, so they do not count; the metric's value did not change, so it still does
    assert mlbuild(toy, "run", "train", "evaluate", "weight=2.5").returncode == 0
    assert "(not run for this model: golden)" in refusal(toy, "weight=2.5")
    # back to the tested model: its verdicts are still in the cache
    assert mlbuild(toy, "run").returncode == 0
    assert gate(toy).ok


def test_a_failed_test_is_named_with_its_summary_and_can_be_let_through(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS.replace("min: 0.8", "min: 0.95")))
    assert run_json(toy)["code"] == 1
    assert "(failed: accuracy (accuracy 0.9 is below the minimum 0.95));" in refusal(toy)
    allowed = gate(toy, allow=True)
    assert (allowed.ok, allowed.allowed, allowed.state) == (False, True, "failing-allowed")
    assert allowed.failed == {"accuracy": "accuracy 0.9 is below the minimum 0.95"}
    # what the packaging command records on its run and puts in the image's labels
    assert allowed.tags() == {"tests": "failing-allowed", "allow-failing-tests": "accuracy"}
    assert allowed.labels() == {
        "dev.mlbuild.tests": "failing-allowed",
        "dev.mlbuild.tests.failed": "accuracy",
        "dev.mlbuild.tests.allow-failing": "true",
    }


def test_an_edited_test_must_run_again_before_the_model_ships(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS))
    assert run_json(toy)["code"] == 0
    # a golden case added after the tests ran: the verdict was reached on other cases
    cases = toy.root / "tests" / "cases.csv"
    cases.write_text(cases.read_text() + "three,1.5,0,red,3.0,1,big\n")
    assert "(not run for this model: golden)" in refusal(toy)


def test_a_model_whose_steps_are_not_built_is_refused_before_the_gate(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS))
    from mlbuild.errors import MlbuildError

    with pytest.raises(MlbuildError) as caught:
        gate(toy)
    assert "mlbuild run" in caught.value.message


def test_a_recipe_without_tests_has_nothing_to_gate(toy: Workspace) -> None:
    toy.recipe(toy_recipe("").replace("tests:\n", ""))
    assert mlbuild(toy, "run").returncode == 0
    found = gate(toy)
    assert (found.ok, found.state, found.labels()) == (True, "none", {"dev.mlbuild.tests": "none"})


def test_a_recipe_without_a_model_is_gated_on_its_metrics(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: plain
        steps:
          evaluate:
            cmd: "echo '{\\"accuracy\\": 0.9}' > metrics.json"
            metrics: [metrics.json]
        tests:
          accuracy: {kind: metric, metric: accuracy, min: 0.8}
        """
    )
    assert mlbuild(ws, "run", "evaluate").returncode == 0
    before = mlbuild(ws, "test", "--check")
    assert (before.returncode, before.stderr) == (
        1,
        "mlbuild: the tests of the recipe did not pass (not run: accuracy); run `mlbuild test`\n",
    )
    assert refusal(ws) == (
        "refusing to package the recipe: its tests did not pass (not run: accuracy); run "
        "`mlbuild test` and fix what fails, or pass --allow-failing-tests to package it anyway "
        "(recorded in the image's labels)"
    )
    assert run_json(ws)["code"] == 0
    after = mlbuild(ws, "test", "--check")
    assert (after.returncode, after.stdout) == (0, "1 test passed for the recipe\n")


def test_a_packaged_model_whose_tests_fail_since_is_gated_again(toy: Workspace) -> None:
    # the model's files do not change, but what its tests judge does (the metrics a new
    # evaluation wrote): the bundle built when the tests passed must not be reused unjudged
    toy.recipe(toy_recipe(TESTS) + "package: {bundle: dist/toy}\n")
    assert run_json(toy)["code"] == 0
    assert mlbuild(toy, "run", "package:bundle").returncode == 0
    assert run_json(toy, "accuracy=0.5")["code"] == 1  # same model, its accuracy test fails
    done = mlbuild(toy, "run", "package:bundle", "accuracy=0.5")
    assert done.returncode == 1, done.stderr
    assert "its tests did not pass for this exact model (failed: accuracy" in done.stderr


def test_a_verdict_reached_against_another_baseline_does_not_count(toy: Workspace) -> None:
    # a test against the version in production runs every time; the gate does not run it, so
    # the verdict it reads must have been reached against the version in production now
    toy.recipe(toy_recipe("accuracy: {kind: metric, metric: accuracy, baseline: {alias: prod}}"))
    better = run_json(toy)
    assert run_json(toy, "accuracy=0.85")["code"] == 0  # no version in prod: nothing to compare
    assert gate(toy, "accuracy=0.85").ok
    assert mlbuild(toy, "model", "register", better["run_id"], "--name", "toy").returncode == 0
    assert mlbuild(toy, "model", "alias", "toy", "prod", "1").returncode == 0
    assert "(not run for this model: accuracy)" in refusal(toy, "accuracy=0.85")
    assert run_json(toy, "accuracy=0.85")["code"] == 1  # worse than version 1
    assert "(failed: accuracy (accuracy 0.85 is worse than the baseline" in refusal(
        toy, "accuracy=0.85"
    )
