"""Fit the :class:`features.Featurizer` on the training rows and turn both splits into features.

Params: ``features.ratios``. Writes ``data/features/{x,y}_{train,test}.npy`` and the fitted
featurizer ``model/featurizer.json``, which serving loads together with the model.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from features import MEASUREMENTS, Featurizer, Matrix
from numpy.typing import NDArray

import mlbuild

PREPARED = Path("data/prepared")
OUT = Path("data/features")
FEATURIZER = Path("model/featurizer.json")


def read_split(path: Path) -> tuple[Matrix, NDArray[np.int64]]:
    """The measurements (columns in MEASUREMENTS order, whatever the file's order) and labels."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    measurements = np.array([[float(row[name]) for name in MEASUREMENTS] for row in rows])
    labels = np.array([int(row["label"]) for row in rows], dtype=np.int64)
    return measurements, labels


def main() -> None:
    ratios = bool(mlbuild.params()["features"]["ratios"])
    x_train, y_train = read_split(PREPARED / "train.csv")
    x_test, y_test = read_split(PREPARED / "test.csv")
    featurizer = Featurizer.fit(x_train, ratios=ratios)
    OUT.mkdir(parents=True, exist_ok=True)
    for name, array in {
        "x_train": featurizer.transform(x_train),
        "y_train": y_train,
        "x_test": featurizer.transform(x_test),
        "y_test": y_test,
    }.items():
        np.save(OUT / f"{name}.npy", array, allow_pickle=False)
    FEATURIZER.parent.mkdir(parents=True, exist_ok=True)
    featurizer.save(FEATURIZER)
    print(f"features: {', '.join(featurizer.names)}")


if __name__ == "__main__":
    main()
