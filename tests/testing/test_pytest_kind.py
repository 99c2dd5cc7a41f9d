"""``kind: pytest``: a generated test folder, run by pytest in a child process with mlbuild's
fixtures — registered through the ``pytest11`` entry point, or passed with ``-p`` when the
installed distribution does not declare it."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from mlbuild.testing.kinds.pytest_folder import PLUGIN
from tests.conftest import CHILD_ENV, REPO, Workspace
from tests.testing.conftest import mlbuild, results, run_json, toy_recipe

pytestmark = pytest.mark.slow

FIXTURES_USED = """
import json
import urllib.request


def test_predict_scores_columns_and_records(predict):
    assert predict({"x": [1.0], "n": [0], "colour": ["red"]}) == {
        "score": [2.0], "label": [1], "size": ["big"]
    }
    assert predict([{"x": 0.0, "n": 1, "colour": "red"}])["score"] == [1.0]


def test_model_is_the_runtime_with_its_signature(model):
    assert model.name == "toy"
    assert [t.name for t in model.signature.inputs] == ["x", "n", "colour"]


def test_params_and_metrics(params, metrics):
    assert params["weight"] == 2.0
    assert metrics == {"accuracy": 0.9, "loss": 0.2, "model": "toy"}


def test_server_url_serves_the_model(server_url):
    body = {"dataframe_split": {"columns": ["x", "n", "colour"], "data": [[1.0, 0, "red"]]}}
    request = urllib.request.Request(
        server_url + "/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.load(answer)["predictions"]["score"] == [2.0]
"""


def test_the_fixtures_reach_the_tested_model_params_metrics_and_a_server(toy: Workspace) -> None:
    toy.gen({"checks": {"test_toy.py": FIXTURES_USED}})
    toy.recipe(toy_recipe("team: {kind: pytest, path: checks}"))
    found = run_json(toy)
    assert results(found) == {"team": "passed"}, found
    team = found["tests"][0]
    assert team["summary"] == "pytest: 4 passed"
    assert team["measured"] == {
        "cases_passed": 4,
        "cases_failed": 0,
        "cases_error": 0,
        "cases_skipped": 0,
    }
    # nothing of pytest's is left in the folder whose content is the test's fingerprint
    assert sorted(p.name for p in (toy.root / "checks").iterdir()) == ["test_toy.py"]
    assert not (toy.root / ".pytest_cache").exists()


def test_a_failing_team_test_fails_the_gate_with_its_node_and_message(toy: Workspace) -> None:
    toy.gen(
        {
            "checks": {
                "test_toy.py": "def test_fine():\n    pass\n\n\n"
                "def test_wrong(predict):\n"
                '    assert predict({"x": [0.0], "n": [0], "colour": ["red"]})["size"] == ["big"]\n'
            }
        }
    )
    toy.recipe(toy_recipe("team: {kind: pytest, path: checks, args: [-k, wrong or fine]}"))
    found = run_json(toy)
    assert found["code"] == 1
    team = found["tests"][0]
    assert team["status"] == "failed"
    assert team["summary"] == "pytest: 1 passed, 1 failed"
    assert team["details"] == [
        "checks.test_toy::test_wrong: AssertionError: assert ['small'] == ['big']"
    ]


def test_a_folder_without_tests_fails_and_a_crashing_pytest_is_an_error(toy: Workspace) -> None:
    toy.gen({"empty": {"helpers.py": "X = 1\n"}, "broken": {"conftest.py": "import nowhere\n"}})
    toy.recipe(
        toy_recipe(
            """
            empty: {kind: pytest, path: empty}
            broken: {kind: pytest, path: broken}
            """
        )
    )
    found = run_json(toy)
    assert results(found) == {"empty": "failed", "broken": "error"}
    tests = {t["name"]: t for t in found["tests"]}
    assert tests["empty"]["summary"] == "pytest collected no tests in empty"
    assert tests["broken"]["summary"].startswith(
        "pytest was given bad arguments (exit code 4) in broken; its output is in "
    )
    assert "ModuleNotFoundError: No module named 'nowhere'" in tests["broken"]["summary"]
    assert (toy.root / ".mlbuild" / "logs" / "test-broken.log").is_file()
    # an error is not a verdict: the next run tries again; the verdict of `empty` is kept
    again = run_json(toy)
    assert results(again) == {"empty": "failed (cached)", "broken": "error"}


def test_a_hung_pytest_is_stopped_at_its_timeout(toy: Workspace) -> None:
    toy.gen({"slow": {"test_slow.py": "import time\n\n\ndef test_hangs():\n    time.sleep(600)\n"}})
    toy.recipe(toy_recipe("slow: {kind: pytest, path: slow, timeout: 2}"))
    found = run_json(toy)
    assert results(found) == {"slow": "error"}
    assert found["tests"][0]["summary"].startswith("pytest timed out in slow; its output is in ")


def test_pyproject_registers_the_plugin_as_a_pytest11_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"mlbuild": PLUGIN}


def installed_stub(tmp: Path) -> Path:
    """A distribution's metadata on sys.path declaring the entry point as pyproject does, as an
    installed mlbuild-engine would: pytest loads plugins from exactly this."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    info = tmp / "site" / "mlbuild_engine-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlbuild-engine\nVersion: 0.1.0\n")
    lines = [f"{k} = {v}" for k, v in project["entry-points"]["pytest11"].items()]
    (info / "entry_points.txt").write_text("[pytest11]\n" + "\n".join(lines) + "\n")
    return info.parent


def test_pytest_loads_the_fixtures_through_the_entry_point(toy: Workspace, tmp_path: Path) -> None:
    # the model built, then plain `pytest checks` in the workspace, as a developer runs it
    toy.gen({"checks": {"test_toy.py": FIXTURES_USED}})
    toy.recipe(toy_recipe("team: {kind: pytest, path: checks}"))
    assert mlbuild(toy, "run", "train", "evaluate").returncode == 0
    site = installed_stub(tmp_path)
    path = f"{site}:{CHILD_ENV['PYTHONPATH']}"
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider"],
        cwd=toy.root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    # and `mlbuild test` then leaves the loading to the entry point (twice would be an error)
    found = run_json(toy, env={"PYTHONPATH": path})
    assert results(found) == {"team": "passed"}, found
