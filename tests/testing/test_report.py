"""``mlbuild test`` as a user and CI see it: the table, the cache of verdicts (a test runs again
only when the model or the test changed, and says why), the JUnit XML GitLab reads, and what the
run record keeps."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from tests.conftest import Workspace
from tests.testing.conftest import mlbuild, results, run_json, toy_recipe

pytestmark = pytest.mark.slow

XSD = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))
MARKER = {
    "marker": {"test_mark.py": "def test_mark():\n    open('ran.log', 'a').write('ran\\n')\n"}
}
THREE = """
accuracy: {kind: metric, metric: accuracy, min: 0.8}
golden: {kind: cases, file: tests/cases.csv, name_column: case}
marker: {kind: pytest, path: marker}
"""


def plain(text: str) -> str:
    """Output with its times and run ids made stable, and table columns one space apart."""
    text = re.sub(r"\d+\.\d\ds", "T", text)
    text = re.sub(r"(?<=\S) +", " ", text)
    text = re.sub(r"version [0-9a-f]{12}", "version V", text)
    return re.sub(r"run [0-9a-f]{8}", "run ID", text)


def marks(ws: Workspace) -> int:
    """How often the pytest folder's test ran."""
    log = ws.root / "ran.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_test_runs_again_only_when_the_model_or_the_test_changed(toy: Workspace) -> None:
    toy.gen(MARKER).recipe(toy_recipe(THREE))
    first = mlbuild(toy, "test", "-q")
    assert first.returncode == 0, first.stderr
    assert plain(first.stdout).endswith(
        "TEST KIND RESULT TIME SUMMARY\n"
        "accuracy metric passed T accuracy 0.9 >= 0.8\n"
        "golden cases passed T 4 cases right\n"
        "marker pytest passed T pytest: 1 passed\n"
        "3 passed (0 from the cache) for model 'toy' version V; 2 steps: 2 ran in T; recorded "
        "as run ID\n"
    )
    assert marks(toy) == 1

    again = mlbuild(toy, "test", "-q")
    assert again.returncode == 0, again.stderr
    assert plain(again.stdout).endswith(
        "TEST KIND RESULT TIME SUMMARY\n"
        "accuracy metric passed (cached) T accuracy 0.9 >= 0.8\n"
        "golden cases passed (cached) T 4 cases right\n"
        "marker pytest passed (cached) T pytest: 1 passed\n"
        "3 passed (3 from the cache) for model 'toy' version V; 2 steps: 2 cached in T; recorded "
        "as run ID\n"
    )
    assert marks(toy) == 1, "a cached test ran"

    # another model: the tests that run it run again, the metric's value did not change
    retrained = run_json(toy, "weight=3.0")
    assert retrained["code"] == 1
    assert results(retrained) == {
        "accuracy": "passed (cached)",
        "golden": "failed",
        "marker": "passed",
    }
    why = {t["name"]: t.get("reasons") for t in retrained["tests"]}
    assert [r.split(" (")[0] for r in why["golden"]] == ["dep model.json changed"]
    assert marks(toy) == 2

    # the test itself changed: only it runs again, and says what changed
    toy.recipe(toy_recipe(THREE.replace("min: 0.8", "min: 0.85")))
    edited = run_json(toy)
    assert results(edited) == {
        "accuracy": "passed",
        "golden": "passed (cached)",
        "marker": "passed (cached)",
    }
    assert edited["tests"][0]["reasons"] == ["config.min changed: 0.8 → 0.85"]
    assert marks(toy) == 2

    # so does its file (the cases), and --force runs everything
    toy.gen({"tests": {"cases.csv": (toy.root / "tests" / "cases.csv").read_text() + "\n"}})
    changed = run_json(toy)
    assert results(changed)["golden"] == "passed"
    assert [r.split(" (")[0] for r in changed["tests"][1]["reasons"]] == [
        "dep model.json changed",  # its last run was on the model of weight=3.0
        "dep tests/cases.csv changed",
    ]
    forced = run_json(toy, "--force", "marker")
    assert results(forced) == {"marker": "passed"}
    assert forced["tests"][0]["reasons"] == ["--force"]
    assert marks(toy) == 3


def test_the_results_are_recorded_on_the_run(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe(
            "accuracy: {kind: metric, metric: accuracy, min: 0.95}\n"
            "golden: {kind: cases, file: tests/cases.csv, name_column: case}"
        )
    )
    found = run_json(toy)
    assert found["code"] == 1
    shown = mlbuild(toy, "runs", "show", found["run_id"], "--json")
    run = json.loads(shown.stdout)
    assert run["kind"] == "test"
    assert run["status"] == "failed"
    assert {k: v for k, v in run["metrics"].items() if k.startswith("tests.")} == {
        "tests.accuracy.passed": False,
        "tests.accuracy.value": 0.9,
        "tests.golden.passed": True,
        "tests.golden.cases": 4,
        "tests.golden.wrong": 0,
    }
    steps = {s["name"]: s["status"] for s in run["steps"]}
    assert steps == {
        "train": "ran",
        "evaluate": "ran",
        "tests:accuracy": "failed",
        "tests:golden": "ran",
    }


def test_a_damaged_verdict_is_not_trusted(toy: Workspace) -> None:
    toy.recipe(toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}"))
    first = run_json(toy)
    key = first["tests"][0]["fingerprint"]
    (entry,) = (toy.root / ".mlbuild").rglob(f"{key}.json")
    # a verdict that claims a pass it never had the shape of: read back, refused, run again
    data = json.loads(entry.read_text())
    data["data"]["verdict"] = {"passed": True}
    entry.write_text(json.dumps(data))
    again = run_json(toy)
    assert results(again) == {"golden": "passed"}
    assert again["tests"][0]["reasons"] == [
        "its cached result was unusable (verdict: expected an object with passed, summary, "
        "details, measured, cases) and was quarantined"
    ]


def test_a_cached_run_loads_neither_numpy_nor_the_model(toy: Workspace) -> None:
    toy.recipe(toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}"))
    assert mlbuild(toy, "test").returncode == 0
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['test', '-q'])\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = {'numpy', 'sklearn', 'uvicorn', 'orjson', 'pytest'} & top\n"
        "print(code, sorted(heavy), 'mlbuild.serve.runtime' in sys.modules)\n"
    )
    done = toy.cli_python(probe)
    assert done.stdout.strip().splitlines()[-1] == "0 [] False", done.stderr


def junit(path: Path) -> ET.Element:
    """The report at ``path``, valid against the schema, each case named once."""
    XSD.validate(str(path))
    root = ET.parse(path).getroot()
    pairs = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert len(pairs) == len(set(pairs)), "GitLab drops a case whose classname and name repeat"
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(cases)
        for what in ("failure", "error", "skipped"):
            counted = sum(1 for c in cases if c.find(what) is not None)
            assert int(suite.get(f"{what}s" if what != "skipped" else what, "")) == counted
    return root


TEAM = {
    "team": {
        "test_team.py": (
            "import pytest\n\n\n"
            "def test_fine(predict):\n"
            "    assert predict({'x': [1.0], 'n': [0], 'colour': ['red']})['label'] == [1]\n\n\n"
            "def test_wrong():\n"
            "    print('\\x1b[31mred\\x00')\n"
            "    assert 1 == 2, 'one is not two <&>'\n\n\n"
            "@pytest.mark.skip(reason='not today')\n"
            "def test_later():\n"
            "    pass\n"
        )
    }
}


def test_the_junit_report_is_what_gitlab_reads(toy: Workspace) -> None:
    # a case named with a colour code: XML 1.0 cannot hold ESC even escaped, so it is spelt out
    odd = "case,x,n,colour,score\n\x1b[31mred\x1b[0m,1.0,0,red,9.0\n"
    toy.gen(TEAM).gen({"tests": {"odd.csv": odd}}).recipe(
        toy_recipe(
            """
            accuracy: {kind: metric, metric: accuracy, min: 0.95}
            golden: {kind: cases, file: tests/cases.csv, name_column: case}
            odd: {kind: cases, file: tests/odd.csv, name_column: case}
            team: {kind: pytest, path: team}
            """
        )
    )
    done = mlbuild(toy, "test", "--junit", "reports/junit.xml")
    assert done.returncode == 1
    root = junit(toy.root / "reports" / "junit.xml")
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "toy"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "4", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["recipe"] == "ml.yaml"
    assert props["model"] == "toy"
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert sorted(cases) == [
        ("mlbuild.cases", "golden"),
        ("mlbuild.cases", "odd"),
        ("mlbuild.metric", "accuracy"),
        ("mlbuild.pytest", "team"),
        ("team.test_team", "test_fine"),
        ("team.test_team", "test_later"),
        ("team.test_team", "test_wrong"),
    ]
    failure = cases[("mlbuild.metric", "accuracy")].find("failure")
    assert failure is not None
    assert failure.get("message") == "accuracy 0.9 is below the minimum 0.95"
    assert cases[("mlbuild.cases", "odd")].findtext("failure") == (
        "1 of 1 cases wrong\ntests/odd.csv:2 (\\x1b[31mred\\x1b[0m): score: expected 9.0, got 2.0"
    )
    out = cases[("mlbuild.cases", "golden")].findtext("system-out")
    assert out == "4 cases right\nwhy it ran: never run in this workspace"
    wrong = cases[("team.test_team", "test_wrong")].find("failure")
    assert wrong is not None
    assert "one is not two <&>" in (wrong.get("message") or "")
    skipped = cases[("team.test_team", "test_later")].find("skipped")
    assert skipped is not None
    assert "not today" in (skipped.get("message") or "")


def test_tests_a_failed_step_kept_from_running_are_errors_in_the_report(toy: Workspace) -> None:
    toy.recipe(
        toy_recipe("golden: {kind: cases, file: tests/cases.csv, name_column: case}").replace(
            """echo '{"weight": ${params.weight}}' > model.json""", "echo broken >&2; exit 3"
        )
    )
    done = mlbuild(toy, "test", "--junit", "junit.xml")
    assert done.returncode == 1
    assert plain(done.stdout).endswith(
        "TEST KIND RESULT TIME SUMMARY\n"
        "golden cases not run not run: step 'train' failed (command exited with code 3)\n"
        "1 not run; 1 step: 1 failed in T; recorded as run ID\n"
    ), done.stdout
    root = junit(toy.root / "junit.xml")
    (case,) = root.iter("testcase")
    error = case.find("error")
    assert error is not None
    assert error.get("type") == "not run"
    assert (error.get("message") or "").startswith("not run: step 'train' failed")


def test_command_line_mistakes(toy: Workspace) -> None:
    toy.recipe(toy_recipe("accuracy: {kind: metric, metric: accuracy, min: 0.8}"))
    unknown = mlbuild(toy, "test", "acuracy")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "mlbuild: no test named 'acuracy' (did you mean 'accuracy'?); tests: accuracy\n",
    )
    check = mlbuild(toy, "test", "--check", "accuracy")
    assert (check.returncode, check.stderr) == (
        2,
        "mlbuild: --check judges every declared test; name no tests with it\n",
    )
    toy.gen({"blocked": "a file"})
    unwritable = mlbuild(toy, "test", "--junit", "blocked/junit.xml")
    assert unwritable.returncode == 2
    assert unwritable.stderr.startswith("mlbuild: --junit blocked/junit.xml: cannot write it: ")
    toy.recipe(toy_recipe("").replace("tests:\n", ""))
    none = mlbuild(toy, "test")
    assert (none.returncode, none.stderr) == (
        2,
        "mlbuild: ml.yaml declares no tests; add a tests: section (see the README, "
        "'Model tests')\n",
    )
