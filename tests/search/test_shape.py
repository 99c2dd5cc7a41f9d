"""One compiled graph for every trial of a search, taken only where it is provably each trial's
(mlbuild/search/shape.py); in process, on the real compiler, Hydra included."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.search.world import RECIPE, toy

SPACE = """\
    n_trials: 3
    space:
      train.lr: {type: float, low: 0.001, high: 1.0, log: true}
      train.depth: {type: int, low: 1, high: 8}
"""


def _graphs(root: Path) -> tuple[Any, Any, Any]:
    from mlbuild.graph import Workspace as Engine
    from mlbuild.search import load_search
    from mlbuild.search.shape import TrialGraphs

    engine = Engine.find(root)
    spec, _ = load_search(engine, "hpo", [])
    return engine, spec, TrialGraphs(engine, spec)


def _samples(spec: Any, count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    found = []
    for _ in range(count):
        values: dict[str, Any] = {}
        for p in spec.params:
            if p.kind == "categorical":
                values[p.key] = rng.choice(p.choices)
            elif p.kind == "int":
                values[p.key] = rng.randint(int(p.low), int(p.high))
            else:
                values[p.key] = rng.uniform(p.low, p.high)
        found.append(values)
    return found


def test_trials_of_a_plain_space_share_one_graph_equal_to_each_trials_own(
    ws: Workspace, tmp_path: Path
) -> None:
    from mlbuild.search.shape import trial_overrides

    toy(ws, SPACE, tmp_path / "markers")
    engine, spec, graphs = _graphs(ws.root)
    assert graphs.why_compiled is None
    compiled = sorted((ws.root / ".mlbuild" / "compiled").iterdir())
    for values in _samples(spec, 6):
        assert (
            graphs.graph(values).to_json() == engine.graph(trial_overrides(spec, values)).to_json()
        )
    # the trials took no compile of their own: only the checks above wrote entries
    taken = [graphs.graph(values) for values in _samples(spec, 3)]
    assert len(taken) == 3
    after = sorted((ws.root / ".mlbuild" / "compiled").iterdir())
    assert len(after) == len(compiled) + 6


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (  # a searched value pasted into the command
            ("cmd: python train.py", 'cmd: [python, train.py, "${params.train.lr}"]'),
            "the searched values reach more than their own keys",
        ),
        (  # another param derived from a searched one
            ("prep: {n: 5}", "prep: {n: 5}, lr_copy: '${train.lr}'"),
            "the searched values reach more than their own keys",
        ),
    ],
)
def test_a_searched_value_that_reaches_other_keys_compiles_every_trial(
    ws: Workspace, tmp_path: Path, change: tuple[str, str], why: str
) -> None:
    from mlbuild.search.shape import trial_overrides

    toy(ws, SPACE, tmp_path / "markers")
    text = RECIPE.format(search=SPACE.rstrip("\n")).replace(*change)
    if "lr_copy" in change[1]:
        text = text.replace('params: ["train.*"]', 'params: ["train.*", lr_copy]')
    ws.recipe(text)
    engine, spec, graphs = _graphs(ws.root)
    assert graphs.why_compiled == why
    assert graphs.shape is None
    values = {"train.lr": 0.0123, "train.depth": 4}
    assert graphs.graph(values).to_json() == engine.graph(trial_overrides(spec, values)).to_json()


def test_a_choice_that_could_interpolate_compiles_every_trial(
    ws: Workspace, tmp_path: Path
) -> None:
    toy(
        ws,
        "    n_trials: 3\n    space:\n      train.depth: [1, '${prep.n}']\n",
        tmp_path / "markers",
    )
    _, _, graphs = _graphs(ws.root)
    assert graphs.why_compiled == (
        "a categorical choice holds '$', which Hydra may read as an interpolation"
    )


def test_every_choice_of_a_categorical_key_is_probed(ws: Workspace, tmp_path: Path) -> None:
    """A choice may select a Hydra config group where another does not: each is compiled once
    before the shape is trusted."""
    toy(ws, "    n_trials: 3\n    space:\n      train.depth: [1, 2, 3]\n", tmp_path / "markers")
    text = RECIPE.format(
        search="    n_trials: 3\n    space:\n      train.depth: [1, 2, 3]"
    ).replace("cmd: python train.py", "cmd: python train.py ${params.train.depth}")
    ws.recipe(text)
    from mlbuild.search.shape import _probes

    _, spec, graphs = _graphs(ws.root)
    assert [p["train.depth"] for p in _probes(spec.params, {"train.depth": 1})] == [2, 3]
    assert graphs.shape is None
