"""The team's own checks of the iris model, run by `mlbuild test` (the `team` test in ml.yaml)
with mlbuild's pytest fixtures: `predict`, `server_url`, `metrics`, `params` (and `model`).

`pytest tests/model` in this directory runs them too, on the model the current outputs hold.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

SETOSA = {"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]}


def test_a_typical_setosa_is_a_setosa(predict: Any) -> None:
    assert predict(SETOSA) == {"label": [0], "species": ["setosa"]}


def test_records_score_the_same_as_columns(predict: Any) -> None:
    record = {name: values[0] for name, values in SETOSA.items()}
    assert predict([record, record]) == {"label": [0, 0], "species": ["setosa", "setosa"]}


def test_evaluate_scored_it_above_chance(metrics: dict[str, Any]) -> None:
    assert metrics["accuracy"] > 1 / 3


def test_the_model_is_one_the_config_offers(params: dict[str, Any]) -> None:
    assert params["model"]["name"] in ("logreg", "tree", "forest")


def test_the_server_answers_as_the_model_does(server_url: str, predict: Any) -> None:
    body = {"dataframe_split": {"columns": list(SETOSA), "data": [[5.1, 3.5, 1.4, 0.2]]}}
    request = urllib.request.Request(
        f"{server_url}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.load(answer)["predictions"] == predict(SETOSA)
