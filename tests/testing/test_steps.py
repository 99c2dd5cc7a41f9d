"""A declared test is a step, ``tests:NAME`` of kind ``model-test``: ``mlbuild run`` runs it when it
is named, caches its verdict in the one action cache, ``plan`` says why it runs, the run records
it, and a failing one fails the run — cached as a failure until the model or the test changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace, statuses
from tests.testing.conftest import mlbuild, toy_recipe
from tests.testing.test_preflight import MARKER, MARKER_TEST

pytestmark = pytest.mark.slow

TESTS = f"""
accuracy: {{kind: metric, metric: accuracy, min: 0.8}}
golden: {{kind: cases, file: tests/cases.csv, name_column: case}}
{MARKER_TEST}
"""


def run(ws: Workspace, *args: str) -> tuple[int, dict[str, Any], str]:
    """``mlbuild run --json ARGS``: exit code, the document, stderr."""
    done = mlbuild(ws, "run", "--json", *args)
    return done.returncode, json.loads(done.stdout), done.stderr


def step(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in document["steps"] if s["name"] == name)
    return found


def marks(ws: Workspace) -> int:
    log = ws.root / "ran.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_run_runs_a_named_test_and_caches_its_verdict(toy: Workspace) -> None:
    toy.gen(MARKER).recipe(toy_recipe(TESTS))
    # a run that names no step builds the model and its metrics, and runs no test
    code, built, _ = run(toy)
    assert (code, statuses(built)) == (0, {"train": "ran", "evaluate": "ran"})

    code, first, _ = run(toy, "tests:golden", "tests:marker")
    assert code == 0
    assert statuses(first) == {
        "train": "cached",
        "evaluate": "cached",  # not needed by these two, but the marker's metrics fixture is
        "tests:golden": "ran",
        "tests:marker": "ran",
    }
    golden = step(first, "tests:golden")
    assert golden["data"]["verdict"]["passed"] is True
    assert golden["data"]["verdict"]["summary"] == "4 cases right"
    assert golden["data"]["model"]["name"] == "toy"
    assert first["metrics"]["tests.golden.passed"] is True
    assert marks(toy) == 1

    code, again, _ = run(toy, "tests:golden", "tests:marker")
    assert (code, step(again, "tests:marker")["status"]) == (0, "cached")
    assert marks(toy) == 1, "a cached test ran"


def test_plan_says_why_a_test_runs_again(toy: Workspace) -> None:
    toy.recipe(toy_recipe(TESTS.replace(MARKER_TEST, "")))
    assert mlbuild(toy, "run", "tests:golden", "tests:accuracy").returncode == 0

    toy.recipe(toy_recipe(TESTS.replace(MARKER_TEST, "").replace("min: 0.8", "min: 0.85")))
    cases = toy.root / "tests" / "cases.csv"
    cases.write_text(cases.read_text() + "three,1.5,0,red,3.0,1,big\n")
    done = mlbuild(toy, "plan", "--json", "tests:golden", "tests:accuracy")
    assert done.returncode == 0, done.stderr
    why = {s["name"]: s["reasons"] for s in json.loads(done.stdout)[0]["steps"]}
    assert why["tests:accuracy"] == ["config.min changed: 0.8 → 0.85"]
    assert [r.split(" (")[0] for r in why["tests:golden"]] == ["dep tests/cases.csv changed"]

    # the model changes: the tests that run it say so, the metric's value did not change
    assert mlbuild(toy, "run", "train", "evaluate", "weight=3.0").returncode == 0
    done = mlbuild(toy, "plan", "--json", "tests:golden", "weight=3.0")
    why = {s["name"]: s["reasons"] for s in json.loads(done.stdout)[0]["steps"]}
    assert [r.split(" (")[0] for r in why["tests:golden"]] == [
        "dep model.json changed",
        "dep tests/cases.csv changed",
    ]


def test_a_failing_test_fails_the_run_and_stays_failed_until_something_changes(
    toy: Workspace,
) -> None:
    toy.gen(MARKER).recipe(toy_recipe(TESTS.replace("min: 0.8", "min: 0.95")))
    code, first, stderr = run(toy, "tests:accuracy", "tests:golden", "tests:marker", "-j1")
    assert code == 1
    assert stderr == (
        "mlbuild: step 'tests:accuracy' failed: test failed: accuracy 0.9 is below the minimum "
        "0.95\n"
    )
    assert step(first, "tests:accuracy")["data"]["verdict"]["passed"] is False
    # without --keep-going, nothing starts after the failure
    assert "tests:marker" not in statuses(first) or statuses(first)["tests:marker"] == "skipped"

    # the failure is a verdict: cached, not reached again
    code, again, stderr = run(toy, "tests:accuracy", "-k")
    assert code == 1
    assert step(again, "tests:accuracy")["status"] == "failed"
    assert stderr == (
        "mlbuild: step 'tests:accuracy' failed: test failed: accuracy 0.9 is below the minimum "
        "0.95 (a cached result: --force runs it again)\n"
    )
    # with --keep-going, every other test runs
    code, going, _ = run(toy, "tests:accuracy", "tests:golden", "tests:marker", "-k")
    assert code == 1
    assert statuses(going)["tests:marker"] in ("ran", "cached")
    assert statuses(going)["tests:golden"] in ("ran", "cached")
    # `mlbuild test` shows the same cached verdict
    table = mlbuild(toy, "test", "accuracy")
    assert table.returncode == 1
    assert "accuracy  metric  failed (cached)" in table.stdout

    # the test changes: it runs again, and passes
    toy.recipe(toy_recipe(TESTS))
    code, fixed, _ = run(toy, "tests:accuracy")
    assert (code, step(fixed, "tests:accuracy")["status"]) == (0, "ran")


def test_the_gate_reads_the_verdicts_of_tests_run_by_run(toy: Workspace) -> None:
    from tests.testing.test_gate import gate

    toy.recipe(toy_recipe(TESTS.replace(MARKER_TEST, "")))
    assert mlbuild(toy, "run", "tests:accuracy").returncode == 0
    half = gate(toy, allow=True)
    assert (half.passed, half.not_run) == (["accuracy"], ["golden"])
    assert mlbuild(toy, "run", "tests:golden").returncode == 0
    assert gate(toy).ok
    check = mlbuild(toy, "test", "--check")
    assert check.returncode == 0, check.stderr


def test_a_test_file_swapped_for_a_symlink_out_is_refused_at_run(
    toy: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "cases.csv").write_text((toy.root / "tests" / "cases.csv").read_text())
    toy.recipe(toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}"))
    assert mlbuild(toy, "run", "tests:golden").returncode == 0
    # the graph is compiled and cached; the folder then becomes a link out of the repository
    (toy.root / "tests" / "cases.csv").unlink()
    (toy.root / "tests").rmdir()
    (toy.root / "tests").symlink_to(outside)
    done = mlbuild(toy, "run", "tests:golden")
    assert done.returncode == 2
    assert "tests.golden.file" in done.stderr
    assert "resolves through the symlink 'tests'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", ["a:b", "..", "a/b", "-a"])
def test_a_test_name_that_is_not_a_step_name_is_refused(toy: Workspace, name: str) -> None:
    toy.recipe(toy_recipe(f"'{name}': {{kind: metric, metric: accuracy, min: 0.8}}"))
    done = mlbuild(toy, "run")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"mlbuild: ml.yaml:30:3: tests.{name}: key '{name}' does not match the pattern "
        "^[A-Za-z_][A-Za-z0-9_-]*$\n"
    )
    assert "Traceback" not in done.stderr


def test_an_unknown_test_target_is_refused_with_a_suggestion(toy: Workspace) -> None:
    toy.recipe(toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}"))
    done = mlbuild(toy, "run", "tests:gloden")
    assert done.returncode == 2
    assert "tests:golden" in done.stderr


def test_the_serving_test_serves_the_packaged_bundle(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe("shipped: {kind: serving, file: tests/cases.csv, target: bundle}")
        + "package: {code: [src/]}\n"
    )
    code, first, stderr = run(toy, "tests:shipped")
    assert code == 0, stderr
    verdict = step(first, "tests:shipped")["data"]["verdict"]
    assert verdict["summary"] == (
        "health, metadata and 4 rows through both protocols agree with the in-process model"
    )
    assert verdict["passed"] is True
    # what the bundle holds is in the test's fingerprint: its code
    (toy.root / "src" / "helper.py").write_text("X = 1\n")
    done = mlbuild(toy, "plan", "--json", "tests:shipped")
    why = json.loads(done.stdout)[0]["steps"][-1]["reasons"]
    assert [r.split(" (")[0] for r in why] == ["dep src changed"]


def test_the_bundle_differs_from_the_model_in_training(toy: Workspace) -> None:
    # a servable that answers differently when the server runs it: train/serve skew
    toy.recipe(
        toy_recipe("shipped: {kind: serving, file: tests/cases.csv, target: bundle}")
        + "package: {code: [src/]}\n"
    )
    done = mlbuild(toy, "run", "tests:shipped", env={"TOY_SKEW": "1"})
    assert done.returncode == 1
    assert done.stderr.startswith(
        "mlbuild: step 'tests:shipped' failed: test failed: the server differs from the "
        "in-process model: "
    )


def test_a_bundle_test_needs_a_package_section(toy: Workspace) -> None:
    toy.recipe(toy_recipe("shipped: {kind: serving, target: bundle}"))
    done = mlbuild(toy, "test")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: ml.yaml:30:36: tests.shipped.target: a serving test of the bundle serves what "
        "`mlbuild package` makes, but the recipe has no package: section; add one (`package: "
        "{code: [src/]}`), or test the server (target: server)\n"
        "   30 |   shipped: {kind: serving, target: bundle}\n"
        "      |                                    ^\n"
        "1 problem in ml.yaml\n"
    )


def test_a_verdict_reached_on_one_machine_is_taken_from_the_remote_cache_on_another(
    toy: Workspace, tmp_path: Path
) -> None:
    import shutil

    remote = {"MLBUILD_REMOTE_CACHE": str(tmp_path / "remote")}
    toy.gen(MARKER).recipe(toy_recipe(TESTS))
    done = mlbuild(toy, "run", "tests:marker", "tests:golden", env=remote)
    assert done.returncode == 0, done.stderr
    assert marks(toy) == 1
    # a fresh clone on another machine: same files, no local cache, the same remote
    clone = Workspace(tmp_path / "clone")
    shutil.copytree(toy.root, clone.root, ignore=shutil.ignore_patterns(".mlbuild", "ran.log"))
    done = mlbuild(clone, "run", "--json", "tests:marker", "tests:golden", env=remote)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert statuses(found)["tests:marker"] in ("cached", "restored")
    assert step(found, "tests:golden")["data"]["verdict"]["summary"] == "4 cases right"
    assert marks(clone) == 0, "the test ran again on the clone"


def test_validate_names_a_missing_test_folder_once(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: plain
        steps:
          evaluate: {cmd: "echo '{\\"accuracy\\": 0.9}' > metrics.json", metrics: [metrics.json]}
        tests:
          team: {kind: pytest, path: nothere}
        """
    )
    done = mlbuild(ws, "validate")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: ml.yaml:6:30: tests.team.path: 'nothere' does not exist and no step makes it; "
        "create the file or add a step that lists it in outs\n"
        "    6 |   team: {kind: pytest, path: nothere}\n"
        "      |                              ^\n"
        "1 problem in ml.yaml\n",
    )
