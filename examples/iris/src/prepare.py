"""Split scikit-learn's bundled iris data into train and test CSV files.

Params: ``data.seed`` and ``data.test_size``. Writes ``data/prepared/{train,test}.csv`` with one
column per measurement and the integer ``label``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

import mlbuild

OUT = Path("data/prepared")


def column_name(feature: str) -> str:
    """``'sepal length (cm)'`` → ``'sepal_length'``."""
    return re.sub(r"\W+", "_", feature.removesuffix("(cm)").strip())


def write_rows(
    path: Path, header: list[str], features: NDArray[np.float64], labels: NDArray[np.int64]
) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*header, "label"])
        for row, label in zip(features.tolist(), labels.tolist(), strict=True):
            writer.writerow([*row, label])


def main() -> None:
    data = mlbuild.params()["data"]
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data,
        iris.target,
        test_size=data["test_size"],
        random_state=data["seed"],
        stratify=iris.target,  # keep the three species equally represented in both splits
    )
    header = [column_name(name) for name in iris.feature_names]
    OUT.mkdir(parents=True, exist_ok=True)
    write_rows(OUT / "train.csv", header, x_train, y_train)
    write_rows(OUT / "test.csv", header, x_test, y_test)
    print(f"prepared {len(y_train)} training and {len(y_test)} test rows in {OUT}")


if __name__ == "__main__":
    main()
