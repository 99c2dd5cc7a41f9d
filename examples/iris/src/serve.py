"""The servable iris model: raw measurements in, the predicted species out.

``mlbuild serve`` and ``mlbuild predict`` load this class (``model.class`` in ``ml.yaml``), and
``train.py`` runs it on a sample to record the signature, so the preprocessing that serving applies
is :class:`features.Featurizer` — the very code ``featurize`` fitted — and nothing else.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from features import MEASUREMENTS, Featurizer

SPECIES = np.array(["setosa", "versicolor", "virginica"], dtype=object)
"""Names of the labels 0, 1, 2 (scikit-learn's iris target names)."""

DELAY = float(os.environ.get("IRIS_SERVE_DELAY", "0"))
"""Seconds each prediction waits: the tests use it to stop a server with a request in flight."""


class Model:
    def load(self, artifacts: dict[str, str]) -> None:
        self.featurizer = Featurizer.load(Path(artifacts["featurizer"]))
        self.estimator = joblib.load(artifacts["model"])

    def predict(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """One column per measurement → the label (0, 1, 2) and the species' name."""
        if DELAY:
            time.sleep(DELAY)
        rows = np.column_stack([inputs[name] for name in MEASUREMENTS])
        labels = self.estimator.predict(self.featurizer.transform(rows))
        return {"label": labels, "species": SPECIES[labels]}
