"""Save the benchmark's model in MLflow's format (run in the MLflow venv by bench_serve.py).

The signature is inferred from the numpy training matrix (a tensor signature), which is what lets
MLflow's scoring server take both `dataframe_split` and `inputs` bodies for the same model.

    python mlflow_export.py {hgb|lr} OUT_DIR
"""

from __future__ import annotations

import sys

import mlflow.sklearn
from mlflow.models import infer_signature
from train_model import build, data

kind, out = sys.argv[1], sys.argv[2]
x, y = data()
model = build(kind).fit(x, y)
mlflow.sklearn.save_model(
    model,
    out,
    signature=infer_signature(x, model.predict(x)),
    # a pickle, as the other servers load (MLflow 3 defaults to skops, which refuses HGB trees)
    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
)
