"""Score the trained model on the held-out test split.

Writes ``metrics.json``: ``accuracy`` and ``f1_macro`` (F1 averaged over the three species with
equal weight), and ``n_test``, the number of flowers scored.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

FEATURES = Path("data/features")
MODEL = Path("model/model.joblib")
METRICS = Path("metrics.json")


def main() -> None:
    model = joblib.load(MODEL)
    x_test = np.load(FEATURES / "x_test.npy")
    y_test = np.load(FEATURES / "y_test.npy")
    predicted = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
        "n_test": len(y_test),
    }
    METRICS.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(metrics, sort_keys=True))


if __name__ == "__main__":
    main()
