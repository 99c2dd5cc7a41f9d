"""The other commands: init, validate, plan, status, gc, and the CLI's contract (exit codes,
messages, start-up cost)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: demo
params: {n: 1}
steps:
  make:
    cmd: python -c "import mlbuild; print(mlbuild.params()['n'])" > n.txt
    params: [n]
    outs: [n.txt]
  copy:
    cmd: cp n.txt copy.txt
    deps: [n.txt]
    outs: [copy.txt]
"""

HEAVY = (
    *("pydantic", "hydra", "omegaconf", "dvc", "optuna", "docker", "kubernetes", "sqlalchemy"),
    *("uvicorn", "orjson", "numpy", "sklearn", "joblib"),  # the server stack
)


def imported_modules(
    ws: Workspace, *argv: str, unset: Sequence[str] = ()
) -> tuple[str, set[str], str]:
    """``mlbuild ARGV`` run in-process in ``ws`` with the variables ``unset`` removed: its exit
    code, every module it imported, and its stderr."""
    probe = (
        "import contextlib, io, os, sys\n"
        f"for name in {list(unset)!r}:\n"
        "    os.environ.pop(name, None)\n"
        "from mlbuild.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        code = main({list(argv)!r})\n"
        "    except SystemExit as exit:\n"
        "        code = exit.code\n"
        "print(code, ' '.join(sorted(sys.modules)))\n"
    )
    done = ws.cli_python(probe)
    code, _, modules = done.stdout.strip().splitlines()[-1].partition(" ")
    return code, set(modules.split()), done.stderr


def loaded_modules(ws: Workspace, *argv: str) -> set[str]:
    """The top-level packages ``mlbuild ARGV`` imported."""
    code, modules, stderr = imported_modules(ws, *argv)
    assert code in ("0", "2"), stderr
    return {name.split(".")[0] for name in modules}


def test_help_loads_no_heavy_library(ws: Workspace) -> None:
    assert loaded_modules(ws, "--help") & set(HEAVY) == set()


# Start-up (issue 15): a plan and a no-op run build no other command's parser; a plan loads
# nothing that only running steps, recording a run or collecting garbage needs.
NOT_ON_A_NO_OP_RUN = (
    *("mlbuild.cli.test_parser", "mlbuild.cli.store_parser", "mlbuild.cli.review_parser"),
    *("mlbuild.cli.package_parser", "mlbuild.cli.serve_parser", "mlbuild.cli.search_parser"),
    *("mlbuild.cache.lookup", "mlbuild.cache.remote"),
    *("mlbuild.runs.reproduce", "mlbuild.runs.artifacts"),
)
NOT_ON_A_PLAN = (
    *NOT_ON_A_NO_OP_RUN,
    *("mlbuild.runs", "mlbuild.cache.gc", "mlbuild.exec.lock", "mlbuild.cli.sections"),
    *("mlbuild.exec.scheduler", "mlbuild.exec.step", "mlbuild.store.base", "mlbuild.store.journal"),
)


def test_a_plan_and_a_no_op_run_load_only_what_they_use(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    assert ws.cli("run", "-q").returncode == 0
    for argv, unused in ((["run", "-q"], NOT_ON_A_NO_OP_RUN), (["plan"], NOT_ON_A_PLAN)):
        code, modules, stderr = imported_modules(ws, *argv)
        assert code == "0", stderr
        assert modules & set(unused) == set(), argv
        assert "mlbuild.graph" in modules  # the probe saw the command do its work


def test_validate_answers_from_the_compiled_cache_until_the_recipe_changes(
    ws: Workspace,
) -> None:
    ws.recipe(RECIPE)
    ws.cli("validate")
    assert loaded_modules(ws, "validate") & set(HEAVY) == set()
    ws.recipe(RECIPE.replace("n: 1", "n: 2"))
    assert loaded_modules(ws, "validate") & set(HEAVY) == {"pydantic"}


def test_validate_reports_a_good_recipe(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("validate")
    assert (done.returncode, done.stdout) == (0, "ml.yaml: valid (2 steps: make, copy)\n")
    as_json = json.loads(ws.cli("validate", "--json").stdout)
    assert as_json == {"valid": True, "name": "demo", "steps": ["make", "copy"], "params": {"n": 1}}


def test_validate_keeps_a_large_recipe_on_one_readable_line(ws: Workspace) -> None:
    steps = "".join(f"  s{i}:\n    cmd: [echo, '{i}']\n" for i in range(25))
    ws.recipe(f"schema_version: 1\nname: wide\nsteps:\n{steps}")
    done = ws.cli("validate")
    first_ten = ", ".join(f"s{i}" for i in range(10))
    assert (done.returncode, done.stdout) == (
        0,
        f"ml.yaml: valid (25 steps: {first_ten}, … and 15 more (`mlbuild plan` lists them))\n",
    )
    assert len(json.loads(ws.cli("validate", "--json").stdout)["steps"]) == 25


def test_validate_json_lists_problems_for_editors_and_bots(ws: Workspace) -> None:
    ws.recipe(RECIPE.replace("outs: [n.txt]", "outz: [n.txt]"))
    done = ws.cli("validate", "--json")
    assert done.returncode == 2
    problem = json.loads(done.stdout)["problems"][0]
    assert (problem["line"], problem["column"], problem["path"]) == (8, 5, "steps.make.outz")


def test_no_recipe_is_a_clear_error(ws: Workspace) -> None:
    done = ws.cli("run")
    assert done.returncode == 2
    assert "no ml.yaml in" in done.stderr and "create one with `mlbuild init`" in done.stderr


def test_the_recipe_is_found_from_a_subdirectory_and_with_minus_c(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"src": {"x.py": ""}})
    assert ws.cli("-C", "src", "run").returncode == 0
    assert (ws.root / "copy.txt").read_text() == "1\n"


def test_an_unknown_step_suggests_the_nearest(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run", "cpy")
    assert done.returncode == 2
    assert done.stderr == "mlbuild: no step named 'cpy' (did you mean 'copy'?); steps: make, copy\n"


def test_an_error_message_shows_control_characters_as_escapes(ws: Workspace) -> None:
    # a name passed on by a script could clear or recolour the terminal, or forge a line
    ws.recipe(RECIPE)
    done = ws.cli("run", "\x1b[2Jx\rok")
    assert done.returncode == 2
    assert done.stderr == "mlbuild: no step named '\\x1b[2Jx\\rok'; steps: make, copy\n"


def test_a_bad_flag_is_a_usage_error(ws: Workspace) -> None:
    done = ws.cli("run", "--jobs", "many")
    assert done.returncode == 2
    assert "argument -j/--jobs: invalid int value: 'many'" in done.stderr
    assert ws.cli("frobnicate").returncode == 2


def test_plan_explains_each_step(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    ws.run_json()
    done = ws.cli("plan", "n=2")
    assert done.returncode == 0
    assert done.stdout.splitlines() == [
        "plan (n=2):",
        "  STEP  ACTION   WHY",
        "  make  run      param n changed: 1 → 2",
        "  copy  pending  runs after 'make', whose outputs may change",
        "1 of 2 steps will run or be restored, 1 more if upstream outputs change",
    ]
    as_json = json.loads(ws.cli("plan", "--json").stdout)
    assert [s["action"] for s in as_json[0]["steps"]] == ["cached", "cached"]


def test_plan_output_is_plain_text_when_not_a_terminal(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run")
    assert "\x1b[" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == "make: running (never run in this workspace)"


def test_status_shows_each_step_and_its_last_run(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    ws.run_json()
    (ws.root / "copy.txt").unlink()
    done = ws.cli("status")
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["STEP", "STATE", "LAST", "RUN", "TOOK", "WHY"]
    assert lines[1].split()[:3] == ["make", "up", "to"]
    assert "restorable from cache" in lines[2] and "copy.txt is missing" in lines[2]


def test_init_writes_a_recipe_that_validates_and_will_not_overwrite(ws: Workspace) -> None:
    ws.gen({"src": {"train.py": "print('training')\n", "prepare.py": ""}, "requirements.txt": ""})
    done = ws.cli("init")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "wrote ml.yaml and ml.schema.json, which its first line points editors at: commit both; "
        "check the recipe with `mlbuild validate`, then `mlbuild run`\n"
    )
    text = ws.read("ml.yaml")
    # a path beside the recipe, committed with it: a fresh clone's editor finds the schema
    assert text.startswith("# yaml-language-server: $schema=ml.schema.json\n")
    assert ws.read("ml.schema.json") == ws.cli("schema").stdout
    assert ws.cli("schema", "--check").returncode == 0
    assert "cmd: python src/train.py" in text and "requirements: requirements.txt" in text
    assert ws.cli("validate").returncode == 0
    again = ws.cli("init")
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr


@pytest.mark.parametrize("keep_days", [None, "30"])
def test_gc_removes_what_the_workspace_no_longer_uses(ws: Workspace, keep_days: str | None) -> None:
    ws.recipe(RECIPE)
    ws.run_json("n=1")
    ws.run_json("n=2")  # the workspace now holds n=2's outputs
    args = ["gc", "--json"] + (["--keep-days", keep_days] if keep_days else [])
    report = json.loads(ws.cli(*args).stdout)
    if keep_days:
        assert report["actions_removed"] == 0 and report["objects_removed"] == 0
        return
    # n.txt and copy.txt for n=1 hold the same bytes: one object, stored once
    assert report["actions_removed"] == 2 and report["objects_removed"] == 1
    assert statuses(ws.run_json("n=2")) == {"make": "cached", "copy": "cached"}
    assert statuses(ws.run_json("n=1")) == {"make": "ran", "copy": "ran"}


def test_version(ws: Workspace) -> None:
    assert ws.cli("--version").stdout == "mlbuild 0.1.0\n"
