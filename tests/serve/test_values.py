"""Values a datatype cannot hold are refused with a 400 naming the value — never wrapped, rounded
to infinity or coerced — in every format: Open Inference Protocol JSON and binary tensors,
MLflow's JSON formats and CSV. One echo server (a column per datatype) serves the whole module."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from tests.conftest import Workspace
from tests.serve.conftest import ECHO_PY, TYPES, VALID, Server, run_cli

pytestmark = pytest.mark.slow

INFER = "/v2/models/echo/infer"
SIGNED = """\
schema_version: 1
name: signed
steps:
  train:
    cmd: cp signature.src signature.json
    deps: [signature.src]
    outs: [signature.json]
model:
  artifacts: {signature: signature.json}
  class: echo.py:Echo
  signature: signature.json
"""
NUMPY = {
    **{t: t.lower() for t in TYPES if "INT" in t},
    "BOOL": "bool",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


@pytest.fixture(scope="module")
def server(built_echo: Path) -> Iterator[Server]:
    running = Server(Workspace(built_echo))
    yield running
    assert running.stop()[0] == 0


def oip(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": t, "datatype": t, "shape": [len(rows)], "data": [r[t] for r in rows]}
            for t in TYPES
        ]
    }


def two_rows(datatype: str, value: Any) -> list[dict[str, Any]]:
    """A valid row, then a row whose ``datatype`` column holds ``value``."""
    return [dict(VALID), {**VALID, datatype: value}]


def csv_text(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return (
        ",".join(TYPES) + "\n" + "".join(",".join(cell(r[t]) for t in TYPES) + "\n" for r in rows)
    )


def ask(server: Server, path: str, body: Any, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    status, _, answer = server.request("POST", path, raw, {"Content-Type": content_type})
    error = json.loads(answer)
    return status, error.get("error") or error.get("message")


# (datatype, value sent, how the message shows it, the datatype's range)
OUT_OF_RANGE = [
    ("UINT8", 256, "256", "UINT8 (0 to 255)"),
    ("UINT8", -1, "-1", "UINT8 (0 to 255)"),
    ("UINT16", 65536, "65536", "UINT16 (0 to 65535)"),
    ("UINT32", 2**32, "4294967296", "UINT32 (0 to 4294967295)"),
    ("UINT64", -1, "-1", "UINT64 (0 to 18446744073709551615)"),
    ("INT8", 128, "128", "INT8 (-128 to 127)"),
    ("INT8", -129, "-129", "INT8 (-128 to 127)"),
    ("INT16", -32769, "-32769", "INT16 (-32768 to 32767)"),
    ("INT32", 2**31, "2147483648", "INT32 (-2147483648 to 2147483647)"),
    (
        "INT64",
        2**63,
        "9223372036854775808",
        "INT64 (-9223372036854775808 to 9223372036854775807)",
    ),
    ("FP16", 70000, "70000", "FP16 (largest magnitude 65504)"),
    ("FP16", -65536.0, "-65536.0", "FP16 (largest magnitude 65504)"),
    ("FP32", 1e39, "1e+39", "FP32 (largest magnitude 3.4028235e+38)"),
    ("FP32", -1e39, "-1e+39", "FP32 (largest magnitude 3.4028235e+38)"),
]


@pytest.mark.parametrize(("datatype", "value", "shown", "limits"), OUT_OF_RANGE)
def test_a_value_out_of_range_is_refused_in_every_format(
    server: Server, datatype: str, value: Any, shown: str, limits: str
) -> None:
    rows = two_rows(datatype, value)
    column = TYPES.index(datatype)
    said = f"{shown} is out of range for {limits}"
    assert ask(server, INFER, oip(rows)) == (
        400,
        f"inputs[{column}] ('{datatype}').data[1]: {said}",
    )
    assert ask(server, "/invocations", {"dataframe_records": rows}) == (
        400,
        f"dataframe_records[1] column '{datatype}': {said}",
    )
    split = {"columns": list(TYPES), "data": [[r[t] for t in TYPES] for r in rows]}
    assert ask(server, "/invocations", {"dataframe_split": split}) == (
        400,
        f"dataframe_split.data[1] column '{datatype}': {said}",
    )
    columns = {t: [r[t] for r in rows] for t in TYPES}
    assert ask(server, "/invocations", {"inputs": columns}) == (
        400,
        f"inputs.{datatype}[1]: {said}",
    )
    assert ask(server, "/invocations", csv_text(rows), "text/csv") == (
        400,
        f"csv line 3 column '{datatype}': {said}",
    )


def test_integers_beyond_64_bits_are_out_of_range_too(server: Server) -> None:
    # a JSON parser hands them over as floats; CSV cells keep them exact
    assert ask(server, INFER, oip(two_rows("UINT64", 2**64))) == (
        400,
        "inputs[4] ('UINT64').data[1]: 1.8446744073709552e+19 is out of range for UINT64 "
        "(0 to 18446744073709551615)",
    )
    assert ask(server, INFER, oip(two_rows("INT64", -(2**63) - 1))) == (
        400,
        "inputs[8] ('INT64').data[1]: -9.223372036854776e+18 is out of range for INT64 "
        "(-9223372036854775808 to 9223372036854775807)",
    )
    assert ask(server, "/invocations", csv_text(two_rows("UINT64", 2**64)), "text/csv") == (
        400,
        "csv line 3 column 'UINT64': 18446744073709551616 is out of range for UINT64 "
        "(0 to 18446744073709551615)",
    )


def test_the_extremes_of_every_integer_type_are_accepted(server: Server) -> None:
    low = {t: int(np.iinfo(t.lower()).min) for t in TYPES if "INT" in t}
    high = {t: int(np.iinfo(t.lower()).max) for t in TYPES if "INT" in t}
    rows = [{**VALID, **low}, {**VALID, **high}]
    status, body = server.json("POST", INFER, oip(rows))
    assert status == 200, body
    got = {o["name"]: o["data"] for o in body["outputs"]}
    for t, value in low.items():
        assert got[t.lower()] == [value, high[t]], t
    status, body = server.json("POST", "/invocations", {"dataframe_records": rows})
    assert status == 200, body
    assert body["predictions"]["uint64"] == [0, 2**64 - 1]


WRONG_KIND = [
    ("INT32", 1.5, "expected INT32 values, got the floating-point number 1.5; write whole "),
    ("INT32", 2.0, "expected INT32 values, got the floating-point number 2.0; write whole "),
    ("UINT8", True, "expected UINT8 values, got a boolean"),
    ("FP64", False, "expected FP64 values, got a boolean"),
    ("FP32", None, "expected FP32 values, got null"),
    ("BYTES", 7, "expected BYTES values, got the number 7"),
    ("BOOL", None, "expected BOOL values, got null"),
]


@pytest.mark.parametrize(("datatype", "value", "said"), WRONG_KIND)
def test_a_value_of_the_wrong_kind_is_refused_not_coerced(
    server: Server, datatype: str, value: Any, said: str
) -> None:
    column = TYPES.index(datatype)
    rows = two_rows(datatype, value)
    status, message = ask(server, INFER, oip(rows))
    assert status == 400
    assert message.startswith(f"inputs[{column}] ('{datatype}').data[1]: {said}")
    status, message = ask(server, "/invocations", {"dataframe_records": rows})
    assert status == 400
    assert message.startswith(f"dataframe_records[1] column '{datatype}': {said}")


def test_a_column_of_the_wrong_kind_is_named_as_a_whole(server: Server) -> None:
    request = oip([VALID, VALID])
    request["inputs"][0]["data"] = [1, 0]  # BOOL given numbers
    assert ask(server, INFER, request) == (
        400,
        "inputs[0] ('BOOL').data: expected BOOL values, got integers",
    )
    request = oip([VALID, VALID])
    request["inputs"][11]["data"] = ["1.5", "2"]
    assert ask(server, INFER, request) == (
        400,
        "inputs[11] ('FP64').data: expected FP64 values, got strings",
    )


CSV_CELLS = [
    ("FP64", "nan", "nan is refused; send finite numbers (NaN and infinity are not accepted)"),
    ("FP64", "-inf", "-inf is refused; send finite numbers (NaN and infinity are not accepted)"),
    ("FP32", "1e999", "1e999 is refused; send finite numbers (NaN and infinity are not accepted)"),
    ("FP64", "wide", "expected a number, got 'wide'"),
    ("FP64", "", "expected a number, got ''"),
    ("INT8", "1.5", "expected an integer, got '1.5'"),
    ("BOOL", "yes", "expected true, false, 1 or 0, got 'yes'"),
]


@pytest.mark.parametrize(("datatype", "cell", "said"), CSV_CELLS)
def test_a_csv_cell_that_is_not_a_finite_value_of_its_column_is_refused(
    server: Server, datatype: str, cell: str, said: str
) -> None:
    assert ask(server, "/invocations", csv_text(two_rows(datatype, cell)), "text/csv") == (
        400,
        f"csv line 3 column '{datatype}': {said}",
    )


def test_nan_and_infinity_in_binary_tensors_are_refused(server: Server) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    try:
        for value, shown in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")):
            inputs = []
            for t in TYPES:
                array = np.array([VALID[t], VALID[t]], dtype=NUMPY[t])
                if t == "FP32":
                    array[1] = value
                tensor = triton.InferInput(t, [2], t)
                tensor.set_data_from_numpy(array, binary_data=True)
                inputs.append(tensor)
            with pytest.raises(triton.InferenceServerException) as refused:
                client.infer("echo", inputs)
            assert refused.value.status() == "400"
            assert refused.value.message() == (
                f"inputs[10] ('FP32') binary data[1]: {shown} is refused; send finite numbers "
                "(NaN and infinity are not accepted)"
            )
    finally:
        client.close()


def test_bool_bytes_other_than_0_and_1_are_refused(server: Server) -> None:
    header = {
        "inputs": [
            {
                "name": t,
                "datatype": t,
                "shape": [1],
                **(
                    {"parameters": {"binary_data_size": 1}} if t == "BOOL" else {"data": [VALID[t]]}
                ),
            }
            for t in TYPES
        ]
    }
    raw = json.dumps(header).encode()
    status, _, answer = server.request(
        "POST", INFER, raw + b"\x02", {"Inference-Header-Content-Length": str(len(raw))}
    )
    assert (status, json.loads(answer)) == (
        400,
        {"error": "inputs[0] ('BOOL'): BOOL bytes must be 0 or 1"},
    )


def test_every_format_still_round_trips_valid_values(server: Server) -> None:
    rows = [dict(VALID), {**VALID, "FP32": 3.4e38, "FP16": -65504.0, "BYTES": "ü"}]
    expected = {t.lower(): [r[t] for r in rows] for t in TYPES}
    expected["fp32"] = [0.5, pytest.approx(3.4e38, rel=1e-6)]
    status, body = server.json("POST", INFER, oip(rows))
    assert status == 200, body
    assert {o["name"]: o["data"] for o in body["outputs"]} == expected
    for request in ({"dataframe_records": rows}, {"instances": rows}):
        assert server.json("POST", "/invocations", request) == (200, {"predictions": expected})
    status, _, answer = server.request(
        "POST", "/invocations", csv_text(rows), {"Content-Type": "text/csv"}
    )
    assert (status, json.loads(answer)) == (200, {"predictions": expected})


def test_mlbuild_predict_names_the_file_line_of_a_bad_value(
    built_echo: Path, tmp_path: Path
) -> None:
    ws = Workspace(Path(shutil.copytree(built_echo, tmp_path / "echo", symlinks=True)))
    rows = [dict(VALID) for _ in range(5000)]  # more than one batch of 4096 rows
    rows[4500] = {**VALID, "UINT16": 70000}
    ws.gen({"rows.csv": csv_text(rows), "latin.csv": csv_text(rows[:2]).encode("utf-16")})
    done = run_cli(ws, "predict", "rows.csv")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: rows.csv: csv line 4502 column 'UINT16': 70000 is out of range for UINT16 "
        "(0 to 65535)\n"
    )
    done = run_cli(ws, "predict", "latin.csv")
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: latin.csv: the file is not UTF-8 (byte 0xff cannot start a character); "
        "save it as UTF-8\n"
    )
    rows[4500] = dict(VALID)
    ws.gen({"rows.csv": csv_text(rows)})
    done = run_cli(ws, "predict", "rows.csv", "-o", "out.csv")
    assert done.returncode == 0, done.stderr
    assert len(ws.read("out.csv").splitlines()) == 5001


def test_a_model_whose_signature_file_is_impossible_does_not_load(ws: Workspace) -> None:
    signature = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [-2]}], "outputs": []}
    ws.recipe(SIGNED).gen(
        {"echo.py": ECHO_PY, "rows.csv": "x\n1\n", "signature.src": json.dumps(signature)}
    )
    assert run_cli(ws, "run", "-q").returncode == 0
    done = run_cli(ws, "predict", "rows.csv")
    assert (done.returncode, done.stderr) == (
        1,
        "mlbuild: the model's signature is malformed: tensor 'x': shape [-2] is not a list of "
        "sizes (integers >= 0, or -1 for any size), the batch first\n",
    )
