"""``mlbuild serve`` on the iris example, as a real process on 127.0.0.1: the Open Inference
Protocol, MLflow's formats, a real third-party client (tritonclient), metrics, bad payloads,
auth, workers, shutdown — and ``mlbuild predict`` giving the same answers in-process."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import Workspace
from tests.serve.conftest import FLOWERS, MEASUREMENTS, SPECIES, Server, oip_columns, run_cli

pytestmark = pytest.mark.slow

CSV = "sepal_length,sepal_width,petal_length,petal_width\n" + "".join(
    ",".join(map(str, row)) + "\n" for row in FLOWERS
)
INFER = "/v2/models/iris/infer"


def in_process(iris: Workspace) -> dict[str, list[Any]]:
    """``mlbuild predict`` on the flowers: the reference every protocol must agree with."""
    iris.gen({"flowers.csv": CSV})
    done = run_cli(iris, "predict", "flowers.csv")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "label,species"
    rows = [line.split(",") for line in lines[1:]]
    return {"label": [int(r[0]) for r in rows], "species": [r[1] for r in rows]}


def test_health_metadata_and_every_protocol_agree_with_predict(
    iris: Workspace, serving: list[Server]
) -> None:
    expected = in_process(iris)
    assert expected["species"] == SPECIES
    server = Server(iris)
    serving.append(server)

    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready", "/ping"):
        assert server.request("GET", path)[0] == 200, path
    assert server.json("GET", "/v2")[1] == {
        "name": "mlbuild",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data"],
    }
    status, meta = server.json("GET", "/v2/models/iris")
    version = meta["versions"][0]
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert meta["inputs"] == [
        {"name": name, "datatype": "FP64", "shape": [-1]} for name in MEASUREMENTS
    ]
    assert meta["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "species", "datatype": "BYTES", "shape": [-1]},
    ]
    assert server.json("GET", f"/v2/models/iris/versions/{version}")[1] == meta
    assert server.request("GET", f"/v2/models/iris/versions/{version}/ready")[0] == 200

    # Open Inference Protocol, JSON
    status, body = server.json("POST", INFER, {"id": "r1", **oip_columns(FLOWERS)})
    assert status == 200
    assert body == {
        "model_name": "iris",
        "model_version": version,
        "id": "r1",
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [3], "data": expected["label"]},
            {"name": "species", "datatype": "BYTES", "shape": [3], "data": SPECIES},
        ],
    }
    status, body = server.json(
        "POST", f"/v2/models/iris/versions/{version}/infer", oip_columns(FLOWERS)
    )
    assert [o["data"] for o in body["outputs"]] == [expected["label"], SPECIES]

    # MLflow's formats
    records = [dict(zip(MEASUREMENTS, row, strict=True)) for row in FLOWERS]
    columns = {name: [row[i] for row in FLOWERS] for i, name in enumerate(MEASUREMENTS)}
    for request in (
        {"dataframe_split": {"columns": list(MEASUREMENTS), "data": FLOWERS}},
        {
            "dataframe_split": {
                "columns": list(reversed(MEASUREMENTS)),
                "data": [r[::-1] for r in FLOWERS],
            }
        },
        {"dataframe_records": records},
        {"instances": records},
        {"instances": FLOWERS},
        {"inputs": columns},
    ):
        assert server.json("POST", "/invocations", request) == (200, {"predictions": expected}), (
            request
        )
    status, _, raw = server.request("POST", "/invocations", CSV, {"Content-Type": "text/csv"})
    assert (status, json.loads(raw)) == (200, {"predictions": expected})

    # tritonclient, with its default binary tensors and with JSON
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    assert client.get_model_metadata("iris") == meta
    x = np.array(FLOWERS)
    for binary in (True, False):
        inputs = []
        for i, name in enumerate(MEASUREMENTS):
            tensor = triton.InferInput(name, [len(FLOWERS)], "FP64")
            tensor.set_data_from_numpy(np.ascontiguousarray(x[:, i]), binary_data=binary)
            inputs.append(tensor)
        outputs = None
        if not binary:
            outputs = [
                triton.InferRequestedOutput(n, binary_data=False) for n in ("label", "species")
            ]
        result = client.infer("iris", inputs, outputs=outputs)
        assert result.as_numpy("label").tolist() == expected["label"]
        species = [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("species")]
        assert species == SPECIES
    client.close()

    code, err = server.stop()
    assert code == 0
    assert err.splitlines() == [
        f"mlbuild: serving model 'iris' version {version} on http://127.0.0.1:{server.port} "
        "(1 worker, no auth); Ctrl-C stops",
        "mlbuild: server stopped",
    ]


BAD = [
    ("invalid JSON", INFER, "{", 400, "the body is not valid JSON: "),
    (
        "wrong shape",
        INFER,
        {"inputs": [{**t, "shape": [1, 3]} for t in oip_columns(FLOWERS)["inputs"]]},
        400,
        "inputs[0] ('sepal_length').shape: shape [1, 3] does not match the model's [-1] "
        "(-1 is any size)",
    ),
    (
        "data and shape disagree",
        INFER,
        {"inputs": [{**t, "shape": [2]} for t in oip_columns(FLOWERS)["inputs"]]},
        400,
        "inputs[0] ('sepal_length').data: 3 values, but shape [2] needs 2",
    ),
    (
        "wrong type",
        INFER,
        {"inputs": [{**t, "data": ["5.1", "x", "y"]} for t in oip_columns(FLOWERS)["inputs"]]},
        400,
        "inputs[0] ('sepal_length').data: expected FP64 values, got strings",
    ),
    (
        "wrong datatype",
        INFER,
        {"inputs": [{**t, "datatype": "FP32"} for t in oip_columns(FLOWERS)["inputs"]]},
        400,
        "inputs[0] ('sepal_length').datatype: expected FP64, got 'FP32'",
    ),
    (
        "missing field",
        INFER,
        {"inputs": oip_columns(FLOWERS)["inputs"][1:]},
        400,
        "missing input 'sepal_length'; the model's inputs are: sepal_length, sepal_width, "
        "petal_length, petal_width",
    ),
    (
        "unknown input",
        INFER,
        {"inputs": [{"name": "colour", "datatype": "FP64", "shape": [1], "data": [1]}]},
        400,
        "inputs[0].name: unknown input 'colour'; the model's inputs are: sepal_length, "
        "sepal_width, petal_length, petal_width",
    ),
    ("no inputs", INFER, {"inputs": []}, 400, "'inputs' must be a non-empty list of tensors"),
    (
        "rows of different lengths",
        "/invocations",
        {"dataframe_split": {"columns": list(MEASUREMENTS), "data": [[1, 2, 3, 4], [1, 2]]}},
        400,
        "dataframe_split.data[1]: expected a row of 4 values",
    ),
    (
        "missing column",
        "/invocations",
        {"dataframe_records": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]},
        400,
        "dataframe_records[0]: missing column 'petal_width'",
    ),
    (
        "no known format",
        "/invocations",
        {"rows": []},
        400,
        "unknown key 'rows'; expected one of: dataframe_split, dataframe_records, instances, "
        "inputs",
    ),
    (
        "unknown model",
        "/v2/models/cats/infer",
        {},
        404,
        "unknown model 'cats'; this server serves 'iris'",
    ),
    (
        "unknown version",
        "/v2/models/iris/versions/abc/infer",
        {},
        404,
        "model 'iris' has no version 'abc'; it serves version",
    ),
]


def test_bad_payloads_get_the_right_4xx_and_the_server_keeps_serving(
    iris: Workspace, serving: list[Server]
) -> None:
    server = Server(iris, "--max-body-size", "64k")
    serving.append(server)
    for what, path, body, want_status, want_message in BAD:
        raw = body if isinstance(body, str) else json.dumps(body)
        status, _headers, answer = server.request(
            "POST", path, raw, {"Content-Type": "application/json"}
        )
        error = json.loads(answer)
        message = error.get("error") or error.get("message")
        assert status == want_status, (what, answer)
        assert message.startswith(want_message), (what, message)
        assert "Traceback" not in answer.decode()
        if path == "/invocations":
            assert error["error_code"] == "BAD_REQUEST"

    huge = json.dumps(oip_columns(FLOWERS * 2000))
    assert len(huge) > 64 * 1024
    status, _, answer = server.request("POST", INFER, huge, {"Content-Type": "application/json"})
    assert (status, json.loads(answer)) == (
        413,
        {"error": "the request body is larger than the limit of 65536 bytes (--max-body-size)"},
    )
    status, _, answer = server.request("GET", INFER)
    assert (status, json.loads(answer)) == (405, {"error": "GET is not allowed here; use POST"})
    status, _, answer = server.request(
        "POST", "/invocations", "a,b\n1,2\n", {"Content-Type": "application/xml"}
    )
    assert status == 415

    # still serving, and every error was counted
    assert server.json("POST", INFER, oip_columns(FLOWERS))[0] == 200
    metrics = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_errors_total{route="/v2/models/{name}/infer",kind="invalid_input"} 8' in metrics
    assert 'mlbuild_errors_total{route="/v2/models/{name}/infer",kind="too_large"} 1' in metrics
    assert 'mlbuild_requests_total{route="/v2/models/{name}/infer",status="200"} 1' in metrics
    assert server.stop()[0] == 0


def test_metrics_count_requests_latency_classes_and_input_features(
    iris: Workspace, serving: list[Server]
) -> None:
    server = Server(iris)
    serving.append(server)
    for _ in range(2):
        assert server.json("POST", INFER, oip_columns(FLOWERS))[0] == 200
    _status, headers, raw = server.request("GET", "/metrics")
    text = raw.decode()
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'mlbuild_requests_total{route="/v2/models/{name}/infer",status="200"} 2' in text
    assert 'mlbuild_request_duration_seconds_count{route="/v2/models/{name}/infer"} 2' in text
    assert (
        'mlbuild_request_duration_seconds_bucket{route="/v2/models/{name}/infer",le="+Inf"} 2'
        in text
    )
    assert 'mlbuild_predictions_total{output="species",class="setosa"} 2' in text
    assert 'mlbuild_predictions_total{output="label",class="2"} 2' in text
    assert 'mlbuild_input_rows_total{input="sepal_length"} 6' in text
    total = 2 * sum(row[0] for row in FLOWERS)
    line = next(
        entry
        for entry in text.splitlines()
        if entry.startswith('mlbuild_input_feature_sum{input="sepal_length"')
    )
    assert float(line.split()[-1]) == pytest.approx(total)
    assert server.stop()[0] == 0


def test_bearer_token_auth(iris: Workspace, serving: list[Server]) -> None:
    token = "s3cret-token-value"
    server = Server(iris, "--token-env", "SERVE_TOKEN", env={"SERVE_TOKEN": token})
    serving.append(server)
    status, headers, raw = server.request("POST", INFER, json.dumps(oip_columns(FLOWERS)))
    assert (status, json.loads(raw)) == (
        401,
        {"error": "missing or wrong bearer token; send `Authorization: Bearer TOKEN`"},
    )
    assert headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer s3cret-token-valuX"}
    assert server.json("POST", INFER, oip_columns(FLOWERS), wrong)[0] == 401
    assert server.json("GET", "/metrics", headers=wrong)[0] == 401
    right = {"Authorization": f"Bearer {token}"}
    assert server.json("POST", INFER, oip_columns(FLOWERS), right)[0] == 200
    assert server.json("POST", "/invocations", {"instances": FLOWERS}, right)[0] == 200
    # probes stay open for orchestrators
    assert server.request("GET", "/v2/health/ready")[0] == 200
    assert server.request("GET", "/ping")[0] == 200
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.get_model_metadata("iris", headers=right)["name"] == "iris"
    with pytest.raises(triton.InferenceServerException):
        client.get_model_metadata("iris")
    client.close()
    code, err = server.stop()
    assert code == 0
    assert token not in err
    assert "bearer token required" in err


def test_auth_with_an_unset_variable_refuses_to_start(iris: Workspace) -> None:
    done = iris.cli("serve", "--token-env", "NO_SUCH_TOKEN_VAR", env={"NO_SUCH_TOKEN_VAR": ""})
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: --token-env NO_SUCH_TOKEN_VAR: the variable is not set or empty; export the "
        "token in it, or drop --token-env to serve without auth\n"
    )


def test_two_workers_serve_and_share_their_metrics(iris: Workspace, serving: list[Server]) -> None:
    server = Server(iris, "--workers", "2")
    serving.append(server)
    for _ in range(20):
        assert server.json("POST", INFER, oip_columns(FLOWERS[:1]))[0] == 200
    time.sleep(1.5)  # each worker shares its counts every second
    text = server.request("GET", "/metrics")[2].decode()
    assert 'mlbuild_requests_total{route="/v2/models/{name}/infer",status="200"} 20' in text
    code, err = server.stop()
    assert code == 0
    assert "(2 workers, no auth)" in err


def test_sigterm_lets_the_request_in_flight_finish(iris: Workspace, serving: list[Server]) -> None:
    server = Server(iris, env={"IRIS_SERVE_DELAY": "1.5"})
    serving.append(server)
    answers: list[int] = []
    thread = threading.Thread(
        target=lambda: answers.append(server.json("POST", INFER, oip_columns(FLOWERS))[0])
    )
    thread.start()
    time.sleep(0.5)  # the request is inside predict()
    code, err = server.stop()
    thread.join()
    assert answers == [200]
    assert code == 0
    assert err.endswith("mlbuild: server stopped\n")


def test_serve_refuses_a_model_whose_steps_have_not_run(iris: Workspace) -> None:
    done = iris.cli("serve", "model=tree")
    assert done.returncode == 1
    assert done.stderr == (
        "mlbuild: the model is not built for the current recipe and params: step 'train' would "
        "run (param model.name changed: 'logreg' → 'tree'; param model.max_depth added (= 3); "
        "param model.min_samples_leaf added (= 2); param model.C removed; param model.max_iter "
        "removed); run `mlbuild run train model=tree` first\n"
    )


def test_serve_and_predict_load_the_cached_model_not_an_edited_copy(iris: Workspace) -> None:
    expected = in_process(iris)
    (iris.root / "model" / "model.joblib").write_bytes(b"not a model any more")
    (iris.root / "model" / "signature.json").unlink()
    assert in_process(iris) == expected


def test_predict_jsonl_and_its_errors(iris: Workspace) -> None:
    rows = [dict(zip(MEASUREMENTS, row, strict=True)) for row in FLOWERS]
    iris.gen({"flowers.jsonl": "".join(json.dumps(r) + "\n" for r in rows)})
    done = run_cli(iris, "predict", "flowers.jsonl", "-o", "out.jsonl")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in iris.read("out.jsonl").splitlines()] == [
        {"label": label, "species": name} for label, name in zip([0, 2, 1], SPECIES, strict=True)
    ]
    assert re.fullmatch(
        r"mlbuild: scored 3 rows with model 'iris' version [0-9a-f]{12}\n", done.stderr
    )
    iris.gen({"bad.jsonl": json.dumps({**rows[0], "petal_width": "wide"}) + "\n"})
    done = run_cli(iris, "predict", "bad.jsonl")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: bad.jsonl: lines from 1: row column 'petal_width': expected FP64 values, "
        "got strings\n"
    )
    before = iris.read("out.jsonl")
    done = run_cli(iris, "predict", "bad.jsonl", "-o", "out.jsonl")
    assert done.returncode == 2
    assert iris.read("out.jsonl") == before  # nothing half-written, the old file kept
    assert not [p.name for p in iris.root.iterdir() if p.name.startswith(".out.jsonl")]
    done = run_cli(iris, "predict", "flowers.jsonl", "-o", "model")
    assert (done.returncode, done.stderr) == (2, "mlbuild: -o model is a directory; name a file\n")
