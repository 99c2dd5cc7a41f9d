"""The benchmark's models: HistGradientBoosting or LogisticRegression on 20 synthetic features.

python train_model.py {hgb|lr}     # writes model.joblib in the current directory
"""

from __future__ import annotations

import sys
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

FEATURES = 20


def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        n_samples=2000, n_features=FEATURES, n_informative=10, random_state=0
    )


def build(kind: str) -> Any:
    if kind == "hgb":
        return HistGradientBoostingClassifier(random_state=0)
    return LogisticRegression(max_iter=1000)


if __name__ == "__main__":
    x, y = data()
    joblib.dump(build(sys.argv[1]).fit(x, y), "model.joblib")
