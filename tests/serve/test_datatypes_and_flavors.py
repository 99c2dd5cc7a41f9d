"""Every Open Inference Protocol datatype through the server — JSON and Triton's binary tensors,
with tritonclient — and the built-in sklearn flavor from a joblib and a skops file."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import Workspace
from tests.serve.conftest import Server, run_cli

pytestmark = pytest.mark.slow

TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
SAMPLES: dict[str, Any] = {
    "BOOL": [True, False, True],
    "BYTES": ["ä", "", "three"],
    "FP16": [0.5, -2.0, 1024.0],
}

ECHO = """\
schema_version: 1
name: echo
steps:
  config:
    cmd: echo '{}' > echo.json
    outs: [echo.json]
model:
  artifacts: {config: echo.json}
  class: echo.py:Echo
  signature:
    inputs:
%s
    outputs:
%s
"""
ECHO_PY = """\
class Echo:
    def load(self, artifacts):
        self.config = open(artifacts["config"]).read()

    def predict(self, inputs):
        return {name.lower(): value for name, value in inputs.items()}
"""


def sample(datatype: str) -> list[Any]:
    return SAMPLES.get(datatype, [1, 2, 127])


@pytest.fixture
def echo(ws: Workspace) -> Workspace:
    """A model that returns its inputs, lower-cased names: one column per datatype, a matrix."""

    def tensors(rename: Any) -> str:
        lines = [f"      - {{name: {rename(t)}, datatype: {t}, shape: [-1]}}" for t in TYPES]
        lines.append(f"      - {{name: {rename('MATRIX')}, datatype: FP32, shape: [-1, 2]}}")
        return "\n".join(lines)

    ws.recipe(ECHO % (tensors(str), tensors(str.lower))).gen({"echo.py": ECHO_PY})
    done = run_cli(ws, "run", "-q")
    assert done.returncode == 0, done.stderr
    return ws


def test_every_datatype_round_trips_as_json_and_as_binary(
    echo: Workspace, serving: list[Server]
) -> None:
    server = Server(echo)
    serving.append(server)
    request = {
        "inputs": [{"name": t, "datatype": t, "shape": [3], "data": sample(t)} for t in TYPES]
        + [
            {
                "name": "MATRIX",
                "datatype": "FP32",
                "shape": [3, 2],
                "data": [[1, 2], [3, 4], [5, 6]],
            }
        ]
    }
    status, body = server.json("POST", "/v2/models/echo/infer", request)
    assert status == 200, body
    got = {o["name"]: (o["datatype"], o["shape"], o["data"]) for o in body["outputs"]}
    for t in TYPES:
        assert got[t.lower()] == (t, [3], sample(t)), t
    assert got["matrix"] == ("FP32", [3, 2], [1, 2, 3, 4, 5, 6])

    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    arrays = {t: np.array(sample(t), dtype=TYPES[t]) for t in TYPES}
    arrays["BYTES"] = np.array([s.encode() for s in sample("BYTES")], dtype=np.object_)
    arrays["MATRIX"] = np.arange(6, dtype=np.float32).reshape(3, 2)
    for binary in (True, False):
        inputs = []
        for name, array in arrays.items():
            datatype = "FP32" if name == "MATRIX" else name
            tensor = triton.InferInput(name, list(array.shape), datatype)
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
        outputs = (
            None
            if binary
            else [triton.InferRequestedOutput(n.lower(), binary_data=False) for n in arrays]
        )
        result = client.infer("echo", inputs, outputs=outputs)
        for name, array in arrays.items():
            back = result.as_numpy(name.lower())
            if name == "BYTES":
                back = [b if isinstance(b, bytes) else b.encode() for b in back.tolist()]
                assert back == array.tolist(), binary
            else:
                assert back.dtype == array.dtype and np.array_equal(back, array), (name, binary)
    client.close()

    # a binary request whose sizes do not add up is refused, and the server carries on
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INT32",
                    "datatype": "INT32",
                    "shape": [3],
                    "parameters": {"binary_data_size": 12},
                }
            ]
        }
    ).encode()
    status, _, raw = server.request(
        "POST",
        "/v2/models/echo/infer",
        header + b"\x00" * 8,
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert (status, json.loads(raw)) == (
        400,
        {
            "error": "inputs[0] ('INT32').parameters.binary_data_size: 12 bytes, but only 8 bytes "
            "of binary data follow the header"
        },
    )
    assert server.stop()[0] == 0


SKLEARN = """\
schema_version: 1
name: lr
steps:
  train:
    cmd: python train.py
    outs: [%s]
model:
  artifacts: {model: %s}
  flavor: sklearn
  signature:
    inputs: [{name: input-0, datatype: FP64, shape: [-1, 2]}]
    outputs: [{name: label, datatype: INT64, shape: [-1]}]
"""
TRAIN = """\
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
x = np.array([[0.0, 0.0], [0.1, 0.2], [1.0, 1.0], [0.9, 1.1]])
model = LogisticRegression().fit(x, np.array([0, 0, 1, 1]))
path = sys.argv[1] if len(sys.argv) > 1 else "model.joblib"
if path.endswith(".skops"):
    import skops.io
    skops.io.dump(model, path)
else:
    import joblib
    joblib.dump(model, path)
"""


@pytest.mark.parametrize("artifact", ["model.joblib", "model.skops"])
def test_the_sklearn_flavor_serves_and_predicts(
    ws: Workspace, serving: list[Server], artifact: str
) -> None:
    ws.recipe(
        (SKLEARN % (artifact, artifact)).replace("python train.py", f"python train.py {artifact}")
    )
    ws.gen({"train.py": TRAIN, "rows.jsonl": "[0.05, 0.1]\n[1.0, 0.95]\n"})
    assert run_cli(ws, "run", "-q").returncode == 0
    done = run_cli(ws, "predict", "rows.jsonl")
    assert (done.returncode, done.stdout) == (0, '{"label":0}\n{"label":1}\n'), done.stderr
    server = Server(ws)
    serving.append(server)
    status, body = server.json(
        "POST", "/invocations", {"dataframe_split": {"data": [[0.05, 0.1], [1.0, 0.95]]}}
    )
    assert (status, body) == (200, {"predictions": [0, 1]})
    status, body = server.json(
        "POST",
        "/v2/models/lr/infer",
        {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 2], "data": [[1, 1]]}]},
    )
    assert body["outputs"][0]["data"] == [1]
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_input_feature_sum{input="input-0",feature="input-0[1]"} 2.05' in metrics
    assert server.stop()[0] == 0
