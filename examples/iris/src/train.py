"""Train the classifier chosen by the Hydra config group ``model``.

Params: ``model`` (its ``name`` picks the estimator, every other key is passed to it) and
``train.seed``. Writes ``model/model.joblib`` and ``model/signature.json``: the servable model
(``serve.Model``) is run on a few raw training rows and its signature inferred from them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from features import MEASUREMENTS
from featurize import PREPARED, read_split
from serve import Model
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mlbuild
from mlbuild.serve import infer_signature

FEATURES = Path("data/features")
OUT = Path("model/model.joblib")
FEATURIZER = Path("model/featurizer.json")
SIGNATURE = Path("model/signature.json")

ESTIMATORS: dict[str, Callable[..., Any]] = {
    "logreg": LogisticRegression,
    "tree": DecisionTreeClassifier,
    "forest": RandomForestClassifier,
}


def build_estimator(model: dict[str, Any], seed: int) -> Any:
    """``{"name": "logreg", "C": 1.0}`` → ``LogisticRegression(C=1.0, random_state=seed)``."""
    settings = dict(model)
    name = settings.pop("name")
    if name not in ESTIMATORS:
        raise SystemExit(
            f"unknown model '{name}'; add conf/model/{name}.yaml's estimator to ESTIMATORS in "
            f"{__file__} or choose one of: {', '.join(ESTIMATORS)}"
        )
    return ESTIMATORS[name](random_state=seed, **settings)


def main() -> None:
    params = mlbuild.params()
    estimator = build_estimator(params["model"], params["train"]["seed"])
    x_train = np.load(FEATURES / "x_train.npy")
    y_train = np.load(FEATURES / "y_train.npy")
    estimator.fit(x_train, y_train)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, OUT)
    write_signature()
    print(
        f"trained {estimator!r} on {len(y_train)} rows; training accuracy "
        f"{estimator.score(x_train, y_train):.4f}"
    )


def write_signature() -> None:
    """Serve a few raw training rows through ``serve.Model`` and record what goes in and out."""
    raw, _ = read_split(PREPARED / "train.csv")
    sample = {name: raw[:5, i] for i, name in enumerate(MEASUREMENTS)}
    servable = Model()
    servable.load({"model": str(OUT), "featurizer": str(FEATURIZER)})
    infer_signature(sample, servable.predict(sample)).save(SIGNATURE)


if __name__ == "__main__":
    main()
