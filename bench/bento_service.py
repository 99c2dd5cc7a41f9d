"""The same scikit-learn model as a BentoML 1.4 service (run by bench_serve.py in its own venv).

MODEL=model.joblib bentoml serve bento_service:Classifier --port 3000
"""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=1)
class Classifier:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["MODEL"])

    @bentoml.api
    def predict(self, data: np.ndarray) -> np.ndarray:
        return self.model.predict(data)
