"""Choosing where a step runs: a step's ``executor:``, ``executors:`` settings, ``run --executor``;
the executor is part of the step's fingerprint, and ``plan`` says when it changed."""

from __future__ import annotations

import json

from mlbuild.exec.executor import EXECUTORS
from mlbuild.recipe.executors import EXECUTOR_NAMES
from tests.conftest import Workspace, statuses

SHOWS_ENV = """\
schema_version: 1
name: env
executors: {clean: {env_passthrough: [SHOWN]}}
steps:
  show:
    cmd: echo "hidden=${HIDDEN:-unset} shown=${SHOWN:-unset} declared=$DECLARED" > env.txt
    env: {DECLARED: "yes"}
    outs: [env.txt]
"""
HOST = {"HIDDEN": "from-the-shell", "SHOWN": "passed"}
MODEL = """\
class Model:
    def load(self, artifacts):
        pass

    def predict(self, inputs):
        return {"y": inputs["x"]}
"""


def test_the_recipe_names_exactly_the_registered_executors() -> None:
    assert set(EXECUTOR_NAMES) == set(EXECUTORS)


def test_a_local_step_sees_the_host_environment(ws: Workspace) -> None:
    ws.recipe(SHOWS_ENV)
    assert statuses(ws.run_json(env=HOST)) == {"show": "ran"}
    assert ws.read("env.txt") == "hidden=from-the-shell shown=passed declared=yes\n"


def test_the_clean_executor_passes_only_what_the_recipe_declares(ws: Workspace) -> None:
    ws.recipe(SHOWS_ENV.replace("    outs: [env.txt]", "    outs: [env.txt]\n    executor: clean"))
    assert statuses(ws.run_json(env=HOST)) == {"show": "ran"}
    assert ws.read("env.txt") == "hidden=unset shown=passed declared=yes\n"


def test_run_executor_moves_every_command_step_and_reruns_it_with_the_reason(
    ws: Workspace,
) -> None:
    ws.recipe(SHOWS_ENV)
    ws.run_json(env=HOST)
    plan = ws.cli("plan", "--executor", "clean", env=HOST)
    assert "show  run     executor changed: local → clean\n" in plan.stdout, plan.stdout
    moved = ws.run_json("--executor", "clean", env=HOST)
    assert statuses(moved) == {"show": "ran"}
    assert moved["steps"][0]["reasons"] == ["executor changed: local → clean"]
    assert ws.read("env.txt") == "hidden=unset shown=passed declared=yes\n"
    assert statuses(ws.run_json("--executor", "clean", env=HOST)) == {"show": "cached"}
    back = ws.run_json(env=HOST)  # local again: its result is still in the cache
    assert statuses(back) == {"show": "restored"}
    assert ws.read("env.txt") == "hidden=from-the-shell shown=passed declared=yes\n"


def test_a_changed_executor_setting_reruns_the_step(ws: Workspace) -> None:
    ws.recipe(SHOWS_ENV.replace("    outs: [env.txt]", "    outs: [env.txt]\n    executor: clean"))
    ws.run_json(env=HOST)
    ws.recipe(
        SHOWS_ENV.replace("[SHOWN]", "[SHOWN, HIDDEN]").replace(
            "    outs: [env.txt]", "    outs: [env.txt]\n    executor: clean"
        )
    )
    result = ws.run_json(env=HOST)
    assert result["steps"][0]["reasons"] == [
        "executor env_passthrough changed: HOME,PATH,SHOWN → HIDDEN,HOME,PATH,SHOWN"
    ]
    assert ws.read("env.txt") == "hidden=from-the-shell shown=passed declared=yes\n"


def test_an_unknown_executor_on_the_command_line_is_a_usage_error(ws: Workspace) -> None:
    ws.recipe(SHOWS_ENV)
    done = ws.cli("run", "--executor", "gpu")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: --executor: no executor named 'gpu'; executors: clean, container, local\n"
    )
    assert not (ws.root / "env.txt").exists()


def test_the_container_executor_without_its_settings_is_a_usage_error(ws: Workspace) -> None:
    ws.recipe(SHOWS_ENV)
    done = ws.cli("run", "--executor", "container")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: --executor container: ml.yaml has no settings for it; add them under "
        "`executors: {container: {...}}` (see `mlbuild schema`)\n"
    )


def test_a_step_on_the_container_executor_needs_its_settings(ws: Workspace) -> None:
    ws.recipe(
        SHOWS_ENV.replace("    outs: [env.txt]", "    outs: [env.txt]\n    executor: container")
    )
    done = ws.cli("validate")
    assert done.returncode == 2
    assert (
        "ml.yaml:9:15: steps.show.executor: executor 'container' needs its settings: add them "
        "under `executors: {container: {...}}` (see `mlbuild schema`)"
    ) in done.stderr


def test_a_kind_config_change_is_named_by_key(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: tiny
        steps:
          train:
            cmd: echo '{}' > w.json
            outs: [w.json]
        model:
          artifacts: {w: w.json}
          class: model.py:Model
          signature:
            inputs: [{name: x, datatype: FP64, shape: [-1]}]
            outputs: [{name: y, datatype: FP64, shape: [-1]}]
          check: {sample: in.csv, output: a.csv}
        """
    ).gen({"in.csv": "x\n1\n", "model.py": MODEL})
    assert statuses(ws.run_json()) == {"train": "ran", "model:check": "ran"}
    ws.gen({"ml.yaml": ws.read("ml.yaml").replace("name: tiny", "name: small")})
    plan = ws.cli("plan", "--json")
    steps = {s["name"]: s for s in json.loads(plan.stdout)[0]["steps"]}
    assert steps["model:check"]["reasons"] == ["config.model changed: 'tiny' → 'small'"]
