"""The iris example's release gates, for real: scikit-learn trains the model, `mlbuild serve`
serves it, the team's pytest folder runs with mlbuild's fixtures — every declared test passes,
then a deliberately wrong golden case fails the gate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.test_example_iris import EXAMPLE, GENERATED
from tests.testing.conftest import mlbuild, results, run_json

pytestmark = pytest.mark.slow

KINDS = {
    "accuracy": "metric",
    "golden": "cases",
    "sepal-noise": "invariance",
    "longer-petals": "directional",
    "per-species": "slices",
    "latency": "latency",
    "serving": "serving",
    "team": "pytest",
}


@pytest.fixture
def iris(tmp_path: Path) -> Workspace:
    """A fresh copy of the example, without outputs or state from a run in the source tree."""

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        return {n for n in names if n == "__pycache__" or (at_top and n in GENERATED)}

    return Workspace(Path(shutil.copytree(EXAMPLE, tmp_path / "iris", ignore=generated)))


def test_the_iris_model_passes_its_gates_and_a_wrong_golden_case_fails_them(
    iris: Workspace,
) -> None:
    first = run_json(iris, "--junit", "junit.xml")
    assert first["code"] == 0, first
    assert results(first) == dict.fromkeys(KINDS, "passed")
    assert {t["name"]: t["kind"] for t in first["tests"]} == KINDS
    assert first["model"]["name"] == "iris"
    assert b'failures="0" errors="0"' in (iris.root / "junit.xml").read_bytes()
    gate = mlbuild(iris, "test", "--check")
    assert gate.returncode == 0, gate.stderr
    assert gate.stdout.startswith("all 8 tests passed for model 'iris' version ")

    # a flower labelled with the wrong species: the cases test fails, and the gate says so
    golden = iris.root / "tests" / "golden.csv"
    golden.write_text(golden.read_text() + "mislabelled,5.1,3.5,1.4,0.2,2,virginica\n")
    wrong = run_json(iris)
    assert wrong["code"] == 1
    assert results(wrong) == {
        **dict.fromkeys(KINDS, "passed (cached)"),
        # every test that reads the file runs again; only the cases test looks at the labels
        "golden": "failed",
        # compared with the version aliased `production` in the run store, which can move
        # without any file changing: a test with a baseline runs every time
        "accuracy": "passed",
        "sepal-noise": "passed",
        "longer-petals": "passed",
        "latency": "passed",
        "serving": "passed",
    }
    failed = next(t for t in wrong["tests"] if t["name"] == "golden")
    assert failed["summary"] == "1 of 10 cases wrong"
    assert failed["details"] == [
        "tests/golden.csv:11 (mislabelled): label: expected 2, got 0; species: expected "
        "'virginica', got 'setosa'"
    ]
    refused = mlbuild(iris, "test", "--check")
    assert refused.returncode == 1
    assert "(failed: golden (1 of 10 cases wrong)); run `mlbuild test`" in refused.stderr
