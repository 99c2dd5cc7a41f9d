"""The preprocessing of iris measurements: written once, used by training and by serving.

``featurize`` fits a :class:`Featurizer` on the training rows and saves it next to the model;
serving code loads the same file and calls the same :meth:`Featurizer.transform`, so a flower
is turned into features identically in both places. The fitted state is plain JSON (no pickle):
readable in review, safe to load, and byte-identical when refitted on the same rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]

MEASUREMENTS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
"""The raw inputs, in the column order every caller passes them (centimetres)."""

_RATIOS = (("sepal_length", "sepal_width"), ("petal_length", "petal_width"))


@dataclass(frozen=True)
class Featurizer:
    """Optional length/width ratios, then standardisation with the training rows' mean and scale."""

    ratios: bool
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, measurements: Matrix, *, ratios: bool) -> Featurizer:
        expanded = _expand(_checked(measurements), ratios=ratios)
        std = expanded.std(axis=0)
        # A constant column would divide by zero; leave it centred but unscaled.
        scale = np.where(std > 0, std, 1.0)
        return cls(ratios, tuple(expanded.mean(axis=0).tolist()), tuple(scale.tolist()))

    @property
    def names(self) -> list[str]:
        """The feature names, in the order of :meth:`transform`'s columns."""
        extra = [f"{a}_to_{b.split('_')[1]}" for a, b in _RATIOS] if self.ratios else []
        return [*MEASUREMENTS, *extra]

    def transform(self, measurements: Matrix) -> Matrix:
        """Features for rows of raw measurements (one row per flower, columns as MEASUREMENTS)."""
        expanded = _expand(_checked(measurements), ratios=self.ratios)
        features: Matrix = (expanded - np.asarray(self.mean)) / np.asarray(self.scale)
        return features

    def save(self, path: Path) -> None:
        state = {**asdict(self), "features": self.names}
        path.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Featurizer:
        state = json.loads(path.read_text(encoding="utf-8"))
        return cls(bool(state["ratios"]), tuple(state["mean"]), tuple(state["scale"]))


def _checked(measurements: Matrix) -> Matrix:
    rows = np.asarray(measurements, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(MEASUREMENTS):
        raise ValueError(
            f"expected rows of {len(MEASUREMENTS)} measurements ({', '.join(MEASUREMENTS)}), "
            f"got an array of shape {rows.shape}"
        )
    return rows


def _expand(rows: Matrix, *, ratios: bool) -> Matrix:
    if not ratios:
        return rows
    column = {name: rows[:, i] for i, name in enumerate(MEASUREMENTS)}
    extra = [
        np.divide(column[a], column[b], out=np.zeros(len(rows)), where=column[b] != 0)
        for a, b in _RATIOS
    ]
    return np.column_stack([rows, *extra])
