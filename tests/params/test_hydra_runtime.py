"""A Hydra tree as Hydra users write it: ``${hydra:…}``, ``${oc.env:…}``, config groups with
``_self_``, plugins, sweepers, and default overrides kept in the recipe."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import REPO, Workspace, statuses

SHOW = 'python -c "import json, mlbuild; print(json.dumps(mlbuild.params(), sort_keys=True))"'

TREE = {
    "conf": {
        "config.yaml": """\
            defaults:
              - model: logreg
              - db: postgres
              - _self_
            train: {lr: 0.1}
            data: {dir: "${oc.env:DATA_DIR}"}
            paths:
              output: ${hydra:runtime.output_dir}
              checkpoints: ${paths.output}/checkpoints
              cwd: ${hydra:runtime.cwd}
              job: ${hydra:job.name}
            """,
        "model": {
            "logreg.yaml": "name: logreg\nC: 1.0\n",
            "tree.yaml": "name: tree\ndepth: 3\n",
        },
        "db": {"postgres.yaml": "url: ${oc.env:DB_URL}\nport: 5432\n"},
    },
}

RECIPE = f"""\
schema_version: 1
name: hydra-app
params: {{config_dir: conf}}
steps:
  paths:
    cmd: {SHOW} > paths.json
    params: [paths]
    outs: [paths.json]
  data:
    cmd: {SHOW} > data.json
    params: [data]
    outs: [data.json]
  train:
    cmd: {SHOW} > train.json
    params: [model, train]
    outs: [train.json]
  db:
    cmd: echo ${{params.db.url}}
"""


def hydra_ws(ws: Workspace, recipe: str = RECIPE) -> Workspace:
    return ws.recipe(recipe).gen(TREE)


def plan(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = ws.cli("plan", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return {s["name"]: [s["action"], *s["reasons"]] for s in json.loads(done.stdout)[0]["steps"]}


def test_hydra_interpolations_resolve_to_the_workspace_and_the_hydra_node_is_no_param(
    ws: Workspace,
) -> None:
    hydra_ws(ws)
    result = ws.run_json("paths", "train")
    assert statuses(result) == {"paths": "ran", "train": "ran"}
    assert json.loads(ws.read("paths.json")) == {
        "paths": {"checkpoints": "./checkpoints", "cwd": ".", "job": "hydra-app", "output": "."}
    }
    done = ws.cli("validate", "--json", env={"DATA_DIR": "/data", "DB_URL": "pg://db"})
    assert sorted(json.loads(done.stdout)["params"]) == ["data", "db", "model", "paths", "train"]


def test_a_fixed_hydra_run_dir_is_kept_and_made_and_one_outside_is_refused(
    ws: Workspace,
) -> None:
    hydra_ws(ws).gen({"conf": {"hydra": {"run.yaml": ""}}})
    config = ws.read("conf/config.yaml") + "hydra:\n  run:\n    dir: outputs/${hydra.job.name}\n"
    ws.gen({"conf": {"config.yaml": config}})
    ws.run_json("paths")
    assert json.loads(ws.read("paths.json"))["paths"]["output"] == "outputs/hydra-app"
    assert (ws.root / "outputs" / "hydra-app").is_dir()
    ws.gen({"conf": {"config.yaml": config.replace("outputs/${hydra.job.name}", "/tmp/out")}})
    done = ws.cli("run", "paths")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: ml.yaml:3:9: params: hydra.run.dir is /tmp/out, outside the workspace; "
        "mlbuild keeps Hydra's output directory inside it (steps run at the workspace root): "
        "use a relative path\n"
    )


def test_an_env_var_read_by_a_step_is_part_of_its_inputs_and_plan_says_it_changed(
    ws: Workspace,
) -> None:
    hydra_ws(ws)
    ws.run_json("data", env={"DATA_DIR": "/data/v1"})
    assert plan(ws, "data", env={"DATA_DIR": "/data/v1"}) == {"data": ["cached"]}
    assert plan(ws, "data", env={"DATA_DIR": "/data/v2"}) == {
        "data": [
            "run",
            "env var DATA_DIR changed",
            "param data.dir changed: '/data/v1' → '/data/v2'",
        ]
    }
    result = ws.run_json("data", env={"DATA_DIR": "/data/v2"})
    assert statuses(result) == {"data": "ran"}
    assert json.loads(ws.read("data.json")) == {"data": {"dir": "/data/v2"}}


def test_the_compiled_graph_is_reused_until_an_env_var_it_read_changes(ws: Workspace) -> None:
    hydra_ws(ws)
    ws.run_json("data", env={"DATA_DIR": "/data/v1"})
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "main(['plan', 'data'])\n"
        "print('hydra' in {m.split('.')[0] for m in sys.modules})\n"
    )

    def composes(value: str) -> str:
        done = ws.cli_python(f"import os; os.environ['DATA_DIR'] = {value!r}\n" + probe)
        return done.stdout.strip().splitlines()[-1]

    assert composes("/data/v1") == "False"
    assert composes("/data/v2") == "True"
    assert composes("/data/v2") == "False"


def test_an_unset_env_var_stops_only_the_steps_that_read_it(ws: Workspace) -> None:
    hydra_ws(ws)
    result = ws.run_json("paths", "train", env={"DATA_DIR": "/data"})
    assert statuses(result) == {"paths": "ran", "train": "ran"}
    done = ws.cli("run", "db", env={"DATA_DIR": "/data"})
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: ml.yaml:18:10: steps.db.cmd: parameter 'db.url' cannot be resolved: "
        "environment variable DB_URL is not set; export it, or give a default: "
        "${oc.env:DB_URL,DEFAULT} (written at conf/db/postgres.yaml:1:1)\n"
        "   18 |     cmd: echo ${params.db.url}\n"
        "      |          ^\n"
        "1 problem in ml.yaml\n"
    )
    assert statuses(ws.run_json("db", env={"DATA_DIR": "/data", "DB_URL": "pg://x"})) == {
        "db": "ran"
    }


def test_a_step_selecting_a_subtree_with_a_broken_key_is_stopped_and_told_which(
    ws: Workspace,
) -> None:
    hydra_ws(ws)
    done = ws.cli("plan", "data")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:11:14: steps.data.params[0]: parameter 'data.dir' cannot be resolved: "
        "environment variable DATA_DIR is not set; export it, or give a default: "
        "${oc.env:DATA_DIR,DEFAULT} (written at conf/config.yaml:6:8)"
    )


def test_config_groups_merge_in_defaults_order_with_self(ws: Workspace) -> None:
    ws.recipe(
        f"schema_version: 1\nname: g\nparams: {{config_dir: conf}}\n"
        f"steps:\n  show: {{cmd: '{SHOW} > out.json', params: [model], outs: [out.json]}}\n"
    ).gen(
        {
            "conf": {
                "config.yaml": "defaults:\n  - _self_\n  - model: tree\nmodel: {depth: 9}\n",
                "model": {"tree.yaml": "name: tree\ndepth: 3\n"},
            }
        }
    )
    ws.run_json()
    assert json.loads(ws.read("out.json")) == {"model": {"depth": 3, "name": "tree"}}
    config = "defaults:\n  - model: tree\n  - _self_\nmodel: {depth: 9}\n"
    ws.gen({"conf": {"config.yaml": config}})
    ws.run_json()
    assert json.loads(ws.read("out.json")) == {"model": {"depth": 9, "name": "tree"}}


def test_a_missing_plugin_is_named_with_the_package_to_install(ws: Workspace) -> None:
    hydra_ws(ws).gen(
        {
            "conf": {
                "config.yaml": "defaults:\n  - model: logreg\n  - override hydra/job_logging: "
                "colorlog\n  - _self_\ntrain: {lr: 0.1}\n"
            }
        }
    )
    done = ws.cli("run", "train")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: conf/config.yaml:3:5: defaults[1]: selects hydra/job_logging: colorlog, a "
        "config of a Hydra plugin that is not installed; install it with "
        "`pip install hydra-colorlog`\n"
        "    3 |   - override hydra/job_logging: colorlog\n"
        "      |     ^\n"
        "1 problem in conf/config.yaml\n",
    )


OVERRIDES_RECIPE = f"""\
schema_version: 1
name: defaults
params: {{config_dir: conf}}
overrides: [model=tree, train.lr=0.5]
steps:
  train:
    cmd: {SHOW} > train.json
    params: [model, train]
    outs: [train.json]
"""


def test_recipe_overrides_apply_first_and_the_command_line_wins(ws: Workspace) -> None:
    hydra_ws(ws, OVERRIDES_RECIPE)
    ws.run_json()
    assert json.loads(ws.read("train.json")) == {
        "model": {"depth": 3, "name": "tree"},
        "train": {"lr": 0.5},
    }
    ws.run_json("model=logreg")
    assert json.loads(ws.read("train.json"))["model"] == {"C": 1.0, "name": "logreg"}


def test_a_bad_recipe_override_is_reported_at_its_line(ws: Workspace) -> None:
    hydra_ws(ws, OVERRIDES_RECIPE.replace("train.lr=0.5", "train.lrr=0.5"))
    done = ws.cli("run")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:4:25: overrides[1]: cannot apply override 'train.lrr=0.5': there is "
        "no parameter 'train.lrr' (did you mean 'train.lr'?); to add a new key use "
        "+train.lrr=0.5"
    )
    hydra_ws(ws, OVERRIDES_RECIPE.replace("train.lr=0.5", "'train.lr=0.5,0.6'"))
    done = ws.cli("run")
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:4:25: overrides[1]: 'train.lr=0.5,0.6' is a sweep; sweeps belong on "
        "the command line with --multirun, or in the Hydra config's hydra.sweeper.params"
    )


def test_multirun_sweeps_the_basic_sweepers_params_and_the_command_line_wins(
    ws: Workspace,
) -> None:
    hydra_ws(ws).gen(
        {
            "conf": {
                "search": {
                    "grid.yaml": "# @package _global_\nhydra:\n  sweeper:\n    params:\n"
                    "      model: logreg,tree\n      train.lr: 0.1,0.2\n"
                }
            }
        }
    )
    done = ws.cli("run", "--json", "--multirun", "train", "+search=grid")
    assert done.returncode == 0, done.stderr
    assert [r["overrides"] for r in json.loads(done.stdout)] == [
        ["model=logreg", "train.lr=0.1", "+search=grid"],
        ["model=logreg", "train.lr=0.2", "+search=grid"],
        ["model=tree", "train.lr=0.1", "+search=grid"],
        ["model=tree", "train.lr=0.2", "+search=grid"],
    ]
    done = ws.cli("plan", "--json", "-m", "train", "+search=grid", "train.lr=0.3")
    assert [p["overrides"] for p in json.loads(done.stdout)] == [
        ["model=logreg", "train.lr=0.3", "+search=grid"],
        ["model=tree", "train.lr=0.3", "+search=grid"],
    ]
    # without --multirun the sweeper is not used, as with Hydra: one run of the defaults
    ws.run_json("train", "+search=grid")
    assert json.loads(ws.read("train.json"))["train"] == {"lr": 0.1}


# A stand-in for hydra-optuna-sweeper (whose real package pins optuna<3): the same config group,
# name and _target_, registered the way the real plugin registers it.
OPTUNA_PLUGIN = {
    "hydra_plugins": {
        "optuna_standin": {
            "__init__.py": """\
                from dataclasses import dataclass
                from typing import Any, Dict, Optional

                from hydra.core.config_store import ConfigStore


                @dataclass
                class OptunaSweeperConf:
                    _target_: str = (
                        "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
                    )
                    direction: str = "minimize"
                    n_trials: int = 20
                    params: Optional[Dict[str, Any]] = None


                ConfigStore.instance().store(
                    group="hydra/sweeper", name="optuna", node=OptunaSweeperConf,
                    provider="optuna_sweeper",
                )
                """
        }
    }
}


def test_the_optuna_sweeper_is_refused_with_multirun_and_one_run_works_without(
    ws: Workspace,
) -> None:
    hydra_ws(ws).gen(
        {
            "conf": {
                "search": {
                    "optuna.yaml": "# @package _global_\ndefaults:\n"
                    "  - override /hydra/sweeper: optuna\nhydra:\n  sweeper:\n    params:\n"
                    "      train.lr: interval(0.01, 0.1)\n"
                }
            }
        }
    )
    plugins = ws.root.parent / "plugins"
    from tests.conftest import write_tree

    write_tree(plugins, OPTUNA_PLUGIN)
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(plugins)])}
    done = ws.cli("run", "-m", "train", "+search=optuna", env=env)
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: --multirun: the Hydra config selects Hydra's Optuna sweeper (hydra/sweeper: "
        "optuna), which mlbuild does not run: a search is not built yet, and a plain sweep "
        "would not be the search the config asks for; drop --multirun for one run of the "
        "config's values, or list the values to try, on the command line (train.lr=0.1,0.01) "
        "or in hydra.sweeper.params with the basic sweeper\n",
    )
    assert not (ws.root / "train.json").exists()
    assert statuses(ws.run_json("train", "+search=optuna", env=env)) == {"train": "ran"}


def test_a_step_reading_a_config_file_itself_is_refused_under_overrides(
    ws: Workspace,
) -> None:
    ws.recipe(
        "schema_version: 1\nname: own\nparams: {config_dir: ., config_name: params}\n"
        "steps:\n"
        "  train: {cmd: cat params.yaml > seen.txt, deps: [params.yaml], outs: [seen.txt]}\n"
        "  other: {cmd: echo hi}\n"
    ).gen({"params.yaml": "train: {n_est: 100}\n"})
    assert statuses(ws.run_json()) == {"train": "ran", "other": "ran"}
    done = ws.cli("run", "train.n_est=7")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:5:51: steps.train.deps[0]: 'params.yaml' is a config file of the "
        "Hydra tree, which this step reads itself: it would not see the overrides "
        "train.n_est=7; read the values from ${params.KEY} or mlbuild.params(), or make it a "
        "params file (params: {files: [params.yaml]}), which mlbuild writes the overrides into"
    )
    assert ws.read("seen.txt") == "train: {n_est: 100}\n"
    assert statuses(ws.run_json("other", "train.n_est=7")) == {"other": "cached"}


def test_a_step_depending_on_the_config_dir_is_refused_under_overrides_only(
    ws: Workspace,
) -> None:
    hydra_ws(ws, RECIPE.replace("    params: [model, train]\n", "    deps: [conf]\n"))
    assert statuses(ws.run_json("train")) == {"train": "ran"}
    done = ws.cli("run", "train", "model=tree")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:15:12: steps.train.deps[0]: 'conf' holds conf/config.yaml, a config "
        "file of the Hydra tree, which this step reads itself: it would not see the overrides "
        "model=tree; read the values from ${params.KEY} or mlbuild.params(), or make it a "
        "params file (params: {files: [conf/config.yaml]}), which mlbuild writes the overrides "
        "into"
    )


def test_a_hydra_run_dir_in_git_or_mlbuild_or_through_a_symlink_out_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    # mlbuild makes Hydra's output directory before a step runs, so it is a path mlbuild writes
    hydra_ws(ws)
    (ws.root / ".git").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (ws.root / "out").symlink_to(tmp_path / "elsewhere")
    refused = {
        ".git/hooks": "'.git/hooks' is inside .git (git's own files); mlbuild never reads or "
        "writes there",
        ".mlbuild/cache/objects/zz": "'.mlbuild/cache/objects/zz' is inside .mlbuild (mlbuild's "
        "state and cache); mlbuild never reads or writes there",
        "out/run": f"'out/run' resolves through the symlink 'out' to '{tmp_path}/elsewhere/run', "
        f"which is outside the repository ({ws.root}); use a path inside it, or replace the "
        "symlink with a real directory",
    }
    for value, reason in refused.items():
        done = ws.cli("run", "paths", f"hydra.run.dir={value}")
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"mlbuild: ml.yaml:3:9: params: hydra.run.dir: {reason}\n"), (
            done.stderr
        )
    assert not (ws.root / ".git/hooks").exists()
    assert not (ws.root / ".mlbuild/cache/objects/zz").exists()
    assert list((tmp_path / "elsewhere").iterdir()) == []
    ws.run_json("paths", "hydra.run.dir=runs/here")
    assert (ws.root / "runs/here").is_dir()
