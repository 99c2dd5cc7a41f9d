"""The free words of validate, plan and run: steps, overrides and recipe files, with flags
anywhere among them."""

from __future__ import annotations

import json

from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: demo
params: {n: 1}
steps:
  make: {cmd: "echo ${params.n} > n.txt", params: [n], outs: [n.txt]}
  copy: {cmd: cp n.txt copy.txt, deps: [n.txt], outs: [copy.txt]}
"""


def test_flags_may_come_between_steps_and_overrides(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run", "make", "--multirun", "n=1,2", "--json")
    assert done.returncode == 0, done.stderr
    assert [r["overrides"] for r in json.loads(done.stdout)] == [["n=1"], ["n=2"]]
    plan = ws.cli("plan", "copy", "-j", "2", "n=3", "--json")
    assert plan.returncode == 0, plan.stderr
    [report] = json.loads(plan.stdout)
    assert report["overrides"] == ["n=3"]
    assert [s["name"] for s in report["steps"]] == ["make", "copy"]


def test_an_unknown_flag_among_the_words_is_still_a_usage_error(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run", "make", "--frobnicate", "n=2")
    assert done.returncode == 2
    assert done.stderr.startswith("mlbuild: unrecognized arguments: --frobnicate")


def test_validate_file_validates_that_file(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"other": {"ml.yaml": RECIPE.replace("name: demo", "name: other")}})
    done = ws.cli("validate", "other/ml.yaml")
    assert (done.returncode, done.stdout) == (0, "other/ml.yaml: valid (2 steps: make, copy)\n")
    as_json = json.loads(ws.cli("validate", "other/ml.yaml", "n=5", "--json").stdout)
    assert (as_json["name"], as_json["params"]) == ("other", {"n": 5})


def test_validate_several_files_reports_each_and_fails_if_one_is_bad(ws: Workspace) -> None:
    ws.gen(
        {
            "a.yaml": RECIPE,
            "b.yml": RECIPE.replace("outs: [copy.txt]", "outz: [copy.txt]"),
        }
    )
    done = ws.cli("validate", "b.yml", "a.yaml")
    assert done.returncode == 2
    assert done.stdout == "a.yaml: valid (2 steps: make, copy)\n"
    assert done.stderr.startswith(
        "mlbuild: b.yml:6:49: steps.copy.outz: unknown key 'outz' (did you mean 'outs'?)"
    )
    assert done.stderr.endswith("1 problem in b.yml\n")


def test_a_missing_recipe_file_and_a_stray_word_are_named(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    missing = ws.cli("validate", "nope.yaml", "n=2")
    assert (missing.returncode, missing.stderr) == (
        2,
        "mlbuild: nope.yaml: no such recipe file (a word ending in .yaml or .yml names the "
        "recipe; an override is KEY=VALUE, +KEY=VALUE or ~KEY)\n",
    )
    stray = ws.cli("validate", "make")
    assert (stray.returncode, stray.stderr) == (
        2,
        "mlbuild: 'make' is neither a recipe file (.yaml or .yml) nor an override "
        "(KEY=VALUE, +KEY=VALUE, ~KEY)\n",
    )


def test_run_and_plan_take_the_recipe_as_a_word_like_minus_f(ws: Workspace) -> None:
    ws.gen({"sub": {"ml.yaml": RECIPE}})
    done = ws.cli("run", "sub/ml.yaml", "make", "n=4", "--json")
    assert done.returncode == 0, done.stderr
    assert statuses(json.loads(done.stdout)) == {"make": "ran"}
    assert (ws.root / "sub" / "n.txt").read_text() == "4\n"
    same = ws.cli("-f", "sub/ml.yaml", "plan", "./sub/ml.yaml", "make", "n=4", "--json")
    assert json.loads(same.stdout)[0]["steps"][0]["action"] == "cached"
    ws.gen({"two.yaml": RECIPE})
    both = ws.cli("plan", "sub/ml.yaml", "two.yaml")
    assert (both.returncode, both.stderr) == (
        2,
        "mlbuild: more than one recipe named (sub/ml.yaml, two.yaml); this command runs one "
        "at a time\n",
    )


def test_a_recipe_word_naming_a_directory_or_unreadable_bytes_is_refused(ws: Workspace) -> None:
    ws.gen({"conf.yaml": {"x.txt": ""}, "latin1.yaml": b"schema_version: 1\nname: \xe9\n"})
    folder = ws.cli("run", "conf.yaml")
    assert (folder.returncode, folder.stderr.split(" (")[0]) == (
        2,
        "mlbuild: conf.yaml: no such recipe file",
    )
    latin1 = ws.cli("validate", "latin1.yaml")
    assert latin1.returncode == 2
    assert latin1.stderr.startswith("mlbuild: latin1.yaml: not UTF-8: ")
    assert "Traceback" not in latin1.stderr
