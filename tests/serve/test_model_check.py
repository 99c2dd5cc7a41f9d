"""The model check on the iris example: a cached step, ``model:check``, that loads the real
scikit-learn model from the verified cache as ``mlbuild serve`` does and predicts on a sample."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from mlbuild.cache import hash_bytes
from tests.conftest import Workspace, statuses

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "iris"
STEP_ENV = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
CHECK = """\
  check:
    sample: sample.csv
    output: reports/check.csv
    deps: [src/features.py]
"""
SAMPLE = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


@pytest.fixture
def iris(tmp_path: Path) -> Workspace:
    """The example without its outputs, with a model check on a two-flower sample."""

    def ignored(folder: str, names: list[str]) -> set[str]:
        outputs = (
            {".mlbuild", "data", "model", "metrics.json"} if Path(folder) == EXAMPLE else set()
        )
        return {n for n in names if n == "__pycache__" or n in outputs}

    ws = Workspace(Path(shutil.copytree(EXAMPLE, tmp_path / "iris", ignore=ignored)))
    recipe = ws.read("ml.yaml")
    at = recipe.index("\nmodel:\n") + 1
    end = recipe.index("\n\n", at) + 1  # the model section's last line
    ws.gen({"ml.yaml": recipe[:end] + CHECK + recipe[end:], "sample.csv": SAMPLE})
    return ws


def check_of(result: dict[str, object]) -> dict[str, object]:
    steps = result["steps"]
    assert isinstance(steps, list)
    found: dict[str, object] = next(s for s in steps if s["name"] == "model:check")
    return found


def test_the_check_predicts_is_cached_and_reruns_only_when_the_sample_changes(
    iris: Workspace,
) -> None:
    first = iris.run_json(env=STEP_ENV)
    check = check_of(first)
    assert (check["status"], check["kind"]) == ("ran", "model-check")
    data = check["data"]
    assert isinstance(data, dict)
    assert (data["model"], data["rows"]) == ("iris", 2)
    assert data["predictions"] == [
        {"label": "0", "species": "setosa"},
        {"label": "2", "species": "virginica"},
    ]
    assert iris.read("reports/check.csv") == "label,species\n0,setosa\n2,virginica\n"

    second = iris.run_json(env=STEP_ENV)
    assert set(statuses(second).values()) == {"cached"}
    assert check_of(second)["data"] == data  # kept with the cached result

    iris.gen({"sample.csv": SAMPLE + "5.9,3.0,4.2,1.5\n"})
    plan = iris.cli("plan", env=STEP_ENV)
    old, new = hash_bytes(SAMPLE.encode())[:8], hash_bytes((SAMPLE + "5.9,3.0,4.2,1.5\n").encode())
    assert f"model:check  run     dep sample.csv changed ({old} → {new[:8]})\n" in plan.stdout
    third = iris.run_json("model:check", env=STEP_ENV)
    assert statuses(third) == {
        "prepare": "cached",
        "featurize": "cached",
        "train": "cached",
        "model:check": "ran",
    }
    assert iris.read("reports/check.csv").splitlines()[-1] == "1,versicolor"


def test_the_check_refuses_a_model_whose_cached_bytes_were_swapped(iris: Workspace) -> None:
    iris.run_json(env=STEP_ENV)
    pickle = (iris.root / "model/model.joblib").read_bytes()
    digest = hash_bytes(pickle)
    cached = iris.root / ".mlbuild/cache/objects" / digest[:2] / digest[2:]
    cached.chmod(0o644)
    cached.write_bytes((iris.root / "model/featurizer.json").read_bytes())  # not the model
    shutil.rmtree(iris.root / ".mlbuild/serving")  # no verified copy left from the first run
    iris.gen({"sample.csv": SAMPLE + "5.9,3.0,4.2,1.5\n"})
    done = iris.cli("run", env=STEP_ENV)
    assert done.returncode == 1, done.stderr
    assert (
        "model:check: FAILED: model artifact model/model.joblib: the cached copy is unusable "
        f"(cache object {digest} does not match its digest (altered); moved to "
    ) in done.stdout
    assert (
        "the check loads only the bytes the step produced; make it again with "
        "`mlbuild run --force train`\n"
    ) in done.stdout
    assert not (iris.root / "reports/check.csv").exists()  # no stale predictions left
