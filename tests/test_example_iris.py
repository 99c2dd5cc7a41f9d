"""The iris example, end to end: what a scientist sees following the README's quick start.

Each test copies ``examples/iris`` to a temporary directory and drives the real ``mlbuild`` CLI
there: four real steps (prepare → featurize → train → evaluate) training real scikit-learn models,
with parameters composed by Hydra from ``conf/`` and results in the real content-addressed cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace, statuses

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iris"
STEPS = ("prepare", "featurize", "train", "evaluate")
OUTPUTS = ("data", "model", "metrics.json")  # what the steps write
GENERATED = {*OUTPUTS, ".mlbuild"}  # what a run in the source tree leaves behind
# The steps' `python` must be this interpreter, the one that has mlbuild and scikit-learn.
STEP_ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture
def iris(tmp_path: Path) -> Workspace:
    """A fresh copy of the example, without outputs or state from a run in the source tree."""

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        return {n for n in names if n == "__pycache__" or (at_top and n in GENERATED)}

    return Workspace(Path(shutil.copytree(EXAMPLE, tmp_path / "iris", ignore=generated)))


def mlbuild_run(iris: Workspace, *args: str) -> dict[str, Any]:
    """``mlbuild run --json ARGS`` in the copy: the run's summary, once it has succeeded."""
    return iris.run_json(*args, env=STEP_ENV)


def reasons(summary: dict[str, Any], step: str) -> list[str]:
    return next(s["reasons"] for s in summary["steps"] if s["name"] == step)


def metrics_file(iris: Workspace) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(iris.read("metrics.json"))
    return loaded


def output_digests(iris: Workspace) -> dict[str, str]:
    """SHA-256 of every file the pipeline wrote, by path relative to the workspace."""
    written = [p.relative_to(iris.root) for p in iris.root.rglob("*") if p.is_file()]
    return {
        path.as_posix(): hashlib.sha256((iris.root / path).read_bytes()).hexdigest()
        for path in sorted(written)
        if path.parts[0] in OUTPUTS
    }


def test_quick_start_runs_caches_switches_model_and_restores(iris: Workspace) -> None:
    # The first run runs every step and scores the default model (logistic regression).
    first = mlbuild_run(iris)
    assert statuses(first) == dict.fromkeys(STEPS, "ran")
    scores = metrics_file(iris)
    assert scores["accuracy"] > 0.8
    assert 0.8 < scores["f1_macro"] <= 1.0
    assert first["metrics"] == scores, "the run reports what evaluate wrote to metrics.json"

    # Nothing changed: every step is a cache hit.
    assert statuses(mlbuild_run(iris)) == dict.fromkeys(STEPS, "cached")

    # Another model re-runs exactly the steps that read the `model` param, and says why.
    tree = mlbuild_run(iris, "model=tree")
    assert statuses(tree) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "ran",
        "evaluate": "ran",
    }
    assert reasons(tree, "train")[0].startswith("param model.name changed: 'logreg' → 'tree'")
    assert tree["metrics"]["accuracy"] > 0.8
    assert metrics_file(iris) == tree["metrics"]

    # Back to the default: the first run's model and metrics come back from the cache, unrun.
    back = mlbuild_run(iris)
    assert statuses(back) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "restored",
        "evaluate": "restored",
    }
    assert metrics_file(iris) == scores
    assert back["metrics"] == scores


def test_every_step_reproduces_its_outputs_byte_for_byte(iris: Workspace) -> None:
    mlbuild_run(iris)
    before = output_digests(iris)
    assert {"model/model.joblib", "model/featurizer.json", "metrics.json"} <= before.keys()

    forced = mlbuild_run(iris, "--force")

    assert statuses(forced) == dict.fromkeys(STEPS, "ran")
    assert output_digests(iris) == before
