"""A search space taken from a Hydra config written for hydra-optuna-sweeper
(``hydra.sweeper.params``), as teams that already search with the plugin have one."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import OverrideError
from mlbuild.params import sweeper_space
from tests.conftest import REPO, Workspace, write_tree
from tests.params.test_hydra_runtime import OPTUNA_PLUGIN
from tests.search.world import PREP, TRAIN, ran


def test_each_sweep_maps_to_the_distribution_the_plugin_makes() -> None:
    space = sweeper_space(
        {
            "lr": "tag(log, interval(1e-4, 1e-1))",
            "dropout": "interval(0.0, 0.5)",
            "layers": "interval(1, 4)",
            "depth": "range(1, 3)",
            "ratio": "range(0.1, 0.3, step=0.1)",
            "model": "choice(tree, forest)",
            "width": "16,32",
            "order": "shuffle(range(1, 3))",
            "epochs": "5",
        }
    )
    assert space == {
        "lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "log": False},
        # Hydra reads an interval's bounds as floats, so the plugin samples a float here too
        "layers": {"type": "float", "low": 1.0, "high": 4.0, "log": False},
        # the plugin includes the stop of a range, unlike Hydra's basic sweeper
        "depth": {"type": "int", "low": 1, "high": 3, "step": 1},
        "ratio": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
        "model": {"type": "categorical", "choices": ["tree", "forest"]},
        "width": {"type": "categorical", "choices": [16, 32]},
        "order": {"type": "categorical", "choices": space["order"]["choices"]},
        "epochs": {"type": "fixed", "value": "5"},
    }
    assert sorted(space["order"]["choices"]) == [1, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("interval(0.1", "hydra.sweeper.params.lr: 'interval(0.1' is not valid Hydra syntax: "),
        ("glob(*)", "hydra.sweeper.params.lr: 'glob(*)' is a sweep hydra-optuna-sweeper does not"),
    ],
)
def test_what_the_plugin_would_not_take_is_named(text: str, message: str) -> None:
    with pytest.raises(OverrideError) as caught:
        sweeper_space({"lr": text})
    assert caught.value.message.startswith(message), caught.value.message


RECIPE = """\
schema_version: 1
name: toy
params: {config_dir: conf, config_name: config}
steps:
  prep:
    cmd: python prep.py
    deps: [prep.py]
    params: [prep.n]
    outs: [data.txt]
  train:
    cmd: python train.py
    deps: [train.py, data.txt]
    params: ["train.*"]
    metrics: [metrics.json]
search:
  hpo:
    step: train
    objective: {score: maximize}
    space: hydra
    overrides: [+search=optuna]
    sampler: grid
"""

SWEEP = """\
# @package _global_
defaults:
  - override /hydra/sweeper: optuna
hydra:
  sweeper:
    direction: maximize
    params:
      train.depth: range(4, 6)
      train.lr: choice(0.03, 0.1)
      prep.n: 7
"""


def _sweeper_ws(ws: Workspace, tmp_path: Path, sweep: str) -> dict[str, str]:
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    ws.recipe(RECIPE).gen(
        {
            "prep.py": PREP,
            "train.py": TRAIN,
            "conf": {
                "config.yaml": "train:\n  lr: 0.1\n  depth: 3\nprep:\n  n: 5\n",
                "search": {"optuna.yaml": sweep},
            },
        }
    )
    plugins = tmp_path / "plugins"
    write_tree(plugins, OPTUNA_PLUGIN)  # the plugin's config group, as it registers it
    return {"MARKERS": str(markers), "PYTHONPATH": os.pathsep.join([str(REPO), str(plugins)])}


def test_a_search_takes_its_space_and_fixed_values_from_the_sweeper_config(
    ws: Workspace, tmp_path: Path
) -> None:
    env = _sweeper_ws(ws, tmp_path, SWEEP)
    done = ws.cli("search", "hpo", env=env)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.endswith("; 6 trials (grid sampler, median pruner), 1 worker")
    shown = ws.cli("search", "show", "hpo", "--json", env=env)
    report: dict[str, Any] = json.loads(shown.stdout)
    points = sorted((t["params"]["train.lr"], t["params"]["train.depth"]) for t in report["top"])
    assert points == [(0.03, 4), (0.03, 5), (0.03, 6), (0.1, 4), (0.1, 5), (0.1, 6)]
    # prep.n is fixed by the sweeper config for every trial: the data says 7, not the config's 5
    markers = tmp_path / "markers"
    assert len(ran(markers, "prep")) == 1
    best = report["best"][0]
    assert best["params"] == {"train.lr": 0.03, "train.depth": 5}
    assert best["values"][0] == pytest.approx(7 - (math.log10(0.03) + 1.5) ** 2)


def test_a_sweeper_config_the_search_cannot_use_is_refused_at_the_space(
    ws: Workspace, tmp_path: Path
) -> None:
    cases = {
        "      train.lr: choice(0.03, 0.1)\n": (
            "      train.lr: interval(0.01, 0.1)\n",
            "ml.yaml:21:14: search.hpo.sampler: the grid sampler needs a discrete space, but "
            "train.lr is a continuous interval in hydra.sweeper.params; use range(…) or "
            "choice(…), or another sampler",
        ),
        "      train.depth: range(4, 6)\n": (
            "      train.depth: range(4, 6\n",
            "ml.yaml:19:12: search.hpo.space: hydra.sweeper.params.train.depth: 'range(4, 6' is "
            "not valid Hydra syntax: ",
        ),
        "      prep.n: 7\n": (
            "      prep.n: 7\n      train.dpeth: range(1, 2)\n",
            "ml.yaml:19:12: search.hpo.space: no parameter 'train.dpeth' (did you mean "
            "'train.depth'?); a searched key must be a parameter",
        ),
    }
    for old, (new, message) in cases.items():
        env = _sweeper_ws(ws, tmp_path, SWEEP.replace(old, new))
        done = ws.cli("search", "hpo", env=env)
        assert done.returncode == 2, (old, done.stdout)
        assert done.stderr.startswith(f"mlbuild: {message}"), (old, done.stderr)
        assert not (ws.root / ".mlbuild" / "search.db").exists()
