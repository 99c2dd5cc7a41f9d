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
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iris"
STEPS = ("prepare", "featurize", "train", "evaluate")
OUTPUTS = ("data", "model", "metrics.json")  # what the steps write
GENERATED = {*OUTPUTS, ".mlbuild"}  # what a run in the source tree leaves behind


@pytest.fixture
def iris(tmp_path: Path) -> Path:
    """A fresh copy of the example, without outputs or state from a run in the source tree."""

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        return {n for n in names if n == "__pycache__" or (at_top and n in GENERATED)}

    return Path(shutil.copytree(EXAMPLE, tmp_path / "iris", ignore=generated))


def mlbuild_run(workdir: Path, *args: str) -> dict[str, Any]:
    """``mlbuild run --json ARGS`` in ``workdir``: the run's summary, once it has succeeded."""
    # The steps' `python` must be this interpreter, the one that has mlbuild and scikit-learn.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "mlbuild.cli.main", "run", "--json", *args],
        cwd=workdir,
        check=False,  # a failure is reported below with mlbuild's own message
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"mlbuild run {' '.join(args)} failed:\n{result.stderr}"
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["status"] for step in summary["steps"]}


def reasons(summary: dict[str, Any], step: str) -> list[str]:
    return next(s["reasons"] for s in summary["steps"] if s["name"] == step)


def metrics_file(workdir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((workdir / "metrics.json").read_text(encoding="utf-8"))
    return loaded


def output_digests(workdir: Path) -> dict[str, str]:
    """SHA-256 of every file the pipeline wrote, by path relative to ``workdir``."""
    written = [p.relative_to(workdir) for p in workdir.rglob("*") if p.is_file()]
    return {
        path.as_posix(): hashlib.sha256((workdir / path).read_bytes()).hexdigest()
        for path in sorted(written)
        if path.parts[0] in OUTPUTS
    }


def test_quick_start_runs_caches_switches_model_and_restores(iris: Path) -> None:
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
    assert reasons(tree, "train")[0].startswith("param model changed")
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


def test_every_step_reproduces_its_outputs_byte_for_byte(iris: Path) -> None:
    mlbuild_run(iris)
    before = output_digests(iris)
    assert {"model/model.joblib", "model/featurizer.json", "metrics.json"} <= before.keys()

    forced = mlbuild_run(iris, "--force")

    assert statuses(forced) == dict.fromkeys(STEPS, "ran")
    assert output_digests(iris) == before
