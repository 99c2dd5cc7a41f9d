"""Parameters: inline or a Hydra tree, Hydra's override grammar, sweeps, per-step selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import OverrideError, Problem
from mlbuild.params import ParamSpec, expand_sweeps, nest, resolve_params, select
from tests.conftest import Workspace, statuses

HYDRA_TREE = {
    "conf": {
        "config.yaml": """
            defaults:
              - model: logreg
              - _self_
            train: {lr: 0.1, seed: 1}
            tag: lr-${train.lr}
        """,
        "model": {
            "logreg.yaml": "name: logreg\nC: 1.0\n",
            "xgb.yaml": "name: xgb\ndepth: 6\n",
        },
    },
}


def resolve(spec: ParamSpec, root: Path, *overrides: str) -> dict[str, Any]:
    """The parameters ``spec`` resolves to, composed in this process."""
    return resolve_params(
        spec,
        root=root,
        recipe=root / "ml.yaml",
        overrides=list(overrides),
        problem=lambda path, message: Problem("ml.yaml", None, None, str(path), message),
    ).params


def compose(ws: Workspace, *overrides: str) -> dict[str, object]:
    return resolve(ParamSpec(config_dir="conf"), ws.root, *overrides)


def test_a_hydra_config_tree_composes_with_defaults_and_interpolation(ws: Workspace) -> None:
    ws.gen(HYDRA_TREE)
    assert compose(ws) == {
        "model": {"name": "logreg", "C": 1.0},
        "train": {"lr": 0.1, "seed": 1},
        "tag": "lr-0.1",
    }


def test_overrides_use_hydras_grammar_groups_values_additions_and_deletions(
    ws: Workspace,
) -> None:
    ws.gen(HYDRA_TREE)
    params = compose(ws, "model=xgb", "train.lr=0.01", "+extra=1", "~train.seed")
    assert params == {
        "model": {"name": "xgb", "depth": 6},
        "train": {"lr": 0.01},
        "tag": "lr-0.01",
        "extra": 1,
    }


def test_inline_params_take_the_same_overrides(tmp_path: Path) -> None:
    spec = ParamSpec(values={"train": {"lr": 0.1}, "tag": "${train.lr}"})
    params = resolve(spec, tmp_path, "train.lr=0.5")
    assert params == {"train": {"lr": 0.5}, "tag": 0.5}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.lrr=1",
            "cannot apply override 'train.lrr=1': there is no parameter 'train.lrr' "
            "(did you mean 'train.lr'?); to add a new key use +train.lrr=1",
        ),
        (
            "train.lr=[1",
            "override 'train.lr=[1' is not valid Hydra syntax: no viable alternative at input "
            "'[1'; expected key=value, +key=value, ++key=value or ~key",
        ),
        (
            "train.lr=0.1,0.2",
            "override 'train.lr=0.1,0.2' is a sweep; pass --multirun to run one combination "
            "after another",
        ),
    ],
)
def test_bad_overrides_say_what_is_wrong(override: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(OverrideError) as caught:
        resolve(ParamSpec(values={"train": {"lr": 0.1}}), tmp_path, override)
    assert caught.value.message == message


def test_sweeps_expand_to_every_combination() -> None:
    assert expand_sweeps(["a=1,2", "b=x", "c=range(0,2)"]) == [
        ["a=1", "b=x", "c=0"],
        ["a=1", "b=x", "c=1"],
        ["a=2", "b=x", "c=0"],
        ["a=2", "b=x", "c=1"],
    ]


def test_a_step_selects_keys_subtrees_and_globs() -> None:
    params = {"train": {"lr": 0.1, "opt": {"name": "adam"}}, "model": {"C": 1}, "seed": 3}
    selected, unmatched = select(params, ["train.*", "model", "seed", "nope.*"])
    assert selected == {
        "model": {"C": 1},
        "seed": 3,
        "train.lr": 0.1,
        "train.opt": {"name": "adam"},
    }
    assert unmatched == ["nope.*"]
    assert nest({"train.lr": 0.1, "seed": 3}) == {"train": {"lr": 0.1}, "seed": 3}


HYDRA_RECIPE = """\
schema_version: 1
name: demo
params: {config_dir: conf}
steps:
  prepare:
    cmd: echo prepared > prepared.txt
    params: [train.seed]
    outs: [prepared.txt]
  train:
    cmd: python -c "import json, mlbuild; json.dump(mlbuild.params(), open('model.json', 'w'))"
    deps: [prepared.txt]
    params: [model, train.lr]
    outs: [model.json]
"""


def test_a_group_override_reruns_the_steps_that_read_it_only(ws: Workspace) -> None:
    ws.recipe(HYDRA_RECIPE).gen(HYDRA_TREE)
    assert statuses(ws.run_json()) == {"prepare": "ran", "train": "ran"}
    result = ws.run_json("model=xgb")
    assert statuses(result) == {"prepare": "cached", "train": "ran"}
    assert result["steps"][1]["reasons"] == [
        "param model.name changed: 'logreg' → 'xgb'",
        "param model.depth added (= 6)",
        "param model.C removed",
    ]
    assert ws.read("model.json") == '{"model": {"name": "xgb", "depth": 6}, "train": {"lr": 0.1}}'


def test_editing_a_config_file_is_seen_without_a_stale_cache(ws: Workspace) -> None:
    ws.recipe(HYDRA_RECIPE).gen(HYDRA_TREE)
    ws.run_json()
    ws.gen({"conf": {"model": {"logreg.yaml": "name: logreg\nC: 2.0\n"}}})
    result = ws.run_json()
    assert statuses(result) == {"prepare": "cached", "train": "ran"}


def test_a_cached_no_op_run_imports_neither_pydantic_nor_hydra(ws: Workspace) -> None:
    ws.recipe(HYDRA_RECIPE).gen(HYDRA_TREE)
    ws.run_json()
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q'])\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = {'pydantic', 'hydra', 'omegaconf', 'yaml'} & top\n"
        "print(code, sorted(heavy))\n"
    )
    done = ws.cli_python(probe)
    assert done.stdout.strip().splitlines()[-1] == "0 []"


def test_a_suggestion_accounts_for_a_group_chosen_on_the_same_command_line(
    ws: Workspace,
) -> None:
    ws.recipe(HYDRA_RECIPE).gen(HYDRA_TREE)
    done = ws.cli("run", "model=xgb", "model.dept=3")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: cannot apply override 'model.dept=3': there is no parameter 'model.dept' "
        "(did you mean 'model.depth'?); to add a new key use +model.dept=3\n"
    )


def test_a_bad_override_on_the_command_line_exits_2_without_a_traceback(ws: Workspace) -> None:
    ws.recipe(HYDRA_RECIPE).gen(HYDRA_TREE)
    done = ws.cli("run", "model=svm")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "model=svm" in done.stderr
    assert "logreg" in done.stderr and "xgb" in done.stderr  # Hydra lists the options
