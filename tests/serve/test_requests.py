"""Every malformed request gets a 4xx that names what is wrong — on each route and format, with
Triton's binary tensors and compressed bodies — and the server keeps serving. One echo server (a
column per datatype) answers the whole module."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.serve.conftest import TYPES, VALID, Server

pytestmark = pytest.mark.slow

INFER = "/v2/models/echo/infer"
INPUT_NAMES = ", ".join(TYPES)
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(built_echo: Path) -> Iterator[Server]:
    running = Server(Workspace(built_echo), "--max-body-size", "256k")
    yield running
    assert running.stop()[0] == 0


def tensors(rows: int = 1, **changes: dict[str, Any]) -> list[dict[str, Any]]:
    """One valid tensor per input (``rows`` rows), with ``changes`` merged into the named ones."""
    return [
        {"name": t, "datatype": t, "shape": [rows], "data": [VALID[t]] * rows, **changes.get(t, {})}
        for t in TYPES
    ]


def records(rows: int = 1) -> list[dict[str, Any]]:
    return [dict(VALID) for _ in range(rows)]


CSV_HEADER = ",".join(TYPES) + "\n"
CSV_ROW = "true,1,1,1,1,-1,-1,-1,-1,0.5,0.5,0.5,a\n"

# (case, path, body, extra headers, status, message)
CASES: list[tuple[str, str, Any, dict[str, str], int, str]] = [
    # the body itself
    (
        "malformed JSON",
        INFER,
        b"{",
        JSON,
        400,
        "the body is not valid JSON: unexpected end of data: line 1 column 2 (char 1)",
    ),
    ("empty body", INFER, b"", JSON, 400, "the body is empty; expected a JSON object"),
    (
        "JSON that is not UTF-8",
        INFER,
        b'{"inputs": "\xff"}',
        JSON,
        400,
        "the body is not valid JSON: byte 0xff at offset 12 is not UTF-8",
    ),
    ("a JSON list", INFER, [1], JSON, 400, "expected a JSON object with 'inputs'"),
    (
        "gzip without Content-Encoding",
        INFER,
        gzip.compress(b"{}"),
        JSON,
        400,
        "the body is not valid JSON: byte 0x8b at offset 1 is not UTF-8; it looks "
        "gzip-compressed: send it with `Content-Encoding: gzip`",
    ),
    (
        "CSV sent to /infer",
        INFER,
        CSV_HEADER + CSV_ROW,
        {"Content-Type": "text/csv"},
        415,
        "unsupported content type 'text/csv'; send application/json (or Triton's binary tensors "
        "as application/octet-stream with Inference-Header-Content-Length)",
    ),
    (
        "a form sent to /invocations",
        "/invocations",
        "a=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported content type 'application/x-www-form-urlencoded'; send application/json or "
        "text/csv",
    ),
    # Open Inference Protocol: the tensors
    (
        "inputs not a list",
        INFER,
        {"inputs": {}},
        JSON,
        400,
        "'inputs' must be a non-empty list of tensors",
    ),
    (
        "a tensor that is not an object",
        INFER,
        {"inputs": [1]},
        JSON,
        400,
        "inputs[0]: expected a tensor object with name, shape, datatype, data",
    ),
    (
        "a name that is not a string",
        INFER,
        {"inputs": [{"name": ["BOOL"]}]},
        JSON,
        400,
        f"inputs[0].name: unknown input ['BOOL']; the model's inputs are: {INPUT_NAMES}",
    ),
    (
        "an input given twice",
        INFER,
        {"inputs": [*tensors(), tensors()[3]]},
        JSON,
        400,
        "inputs[13] ('UINT32'): input given twice",
    ),
    (
        "an input missing",
        INFER,
        {"inputs": tensors()[1:]},
        JSON,
        400,
        f"missing input 'BOOL'; the model's inputs are: {INPUT_NAMES}",
    ),
    (
        "data missing",
        INFER,
        {"inputs": [{"name": "BOOL", "datatype": "BOOL", "shape": [1]}]},
        JSON,
        400,
        "inputs[0] ('BOOL'): missing 'data'",
    ),
    (
        "shape and data disagree",
        INFER,
        {"inputs": tensors(INT8={"shape": [2]})},
        JSON,
        400,
        "inputs[5] ('INT8').data: 1 value, but shape [2] needs 2",
    ),
    (
        "rows differ between inputs",
        INFER,
        {"inputs": tensors(INT8={"shape": [2], "data": [1, 2]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: 2 rows, but the other inputs have 1",
    ),
    (
        "a shape that is not a list",
        INFER,
        {"inputs": tensors(INT8={"shape": "1"})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: expected a list of sizes (integers >= 0), got '1'",
    ),
    (
        "a negative size",
        INFER,
        {"inputs": tensors(INT8={"shape": [-1]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: expected a list of sizes (integers >= 0), got [-1]",
    ),
    (
        "a boolean size",
        INFER,
        {"inputs": tensors(INT8={"shape": [True]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: expected a list of sizes (integers >= 0), got [True]",
    ),
    (
        "a float size",
        INFER,
        {"inputs": tensors(INT8={"shape": [1.0]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: expected a list of sizes (integers >= 0), got [1.0]",
    ),
    (
        "a huge shape with a zero",
        INFER,
        {"inputs": tensors(INT8={"shape": [0, 2**62], "data": []})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: [0, 4611686018427387904] is too large: a request of 913 bytes "
        "holds at most 913 values",
    ),
    (
        "a shape whose product overflows",
        INFER,
        {"inputs": tensors(INT8={"shape": [2**32, 2**32]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: [4294967296, 4294967296] is too large: a request of 915 bytes "
        "holds at most 915 values",
    ),
    (
        "a shape of the wrong rank",
        INFER,
        {"inputs": tensors(INT8={"shape": [1, 1], "data": [[1]]})},
        JSON,
        400,
        "inputs[5] ('INT8').shape: shape [1, 1] does not match the model's [-1] (-1 is any size)",
    ),
    (
        "ragged data",
        INFER,
        {"inputs": tensors(INT8={"shape": [3], "data": [[1, 2], [3]]})},
        JSON,
        400,
        "inputs[5] ('INT8').data: not a regular array (rows of different lengths)",
    ),
    (
        "data nested too deep",
        INFER,
        {"inputs": tensors(INT8={"data": json.loads("[" * 70 + "1" + "]" * 70)})},
        JSON,
        400,
        "inputs[5] ('INT8').data: lists nested more than 64 deep",
    ),
    (
        "the wrong datatype",
        INFER,
        {"inputs": tensors(INT8={"datatype": "INT16"})},
        JSON,
        400,
        "inputs[5] ('INT8').datatype: expected INT8, got 'INT16'",
    ),
    (
        "an empty batch",
        INFER,
        {"inputs": tensors(rows=0)},
        JSON,
        400,
        "inputs[0] ('BOOL').shape: the batch is empty (0 rows); send at least one row",
    ),
    (
        "an unknown output asked for",
        INFER,
        {"inputs": tensors(), "outputs": [{"name": "nope"}]},
        JSON,
        400,
        "outputs[0].name: unknown output 'nope'; the model's outputs are: bool, uint8, uint16, "
        "uint32, uint64, int8, int16, int32, int64, fp16, fp32, fp64, bytes",
    ),
    (
        "an output name that is not a string",
        INFER,
        {"inputs": tensors(), "outputs": [{"name": {}}]},
        JSON,
        400,
        "outputs[0].name: unknown output {}; the model's outputs are: bool, uint8, uint16, "
        "uint32, uint64, int8, int16, int32, int64, fp16, fp32, fp64, bytes",
    ),
    # MLflow's JSON formats
    (
        "no known format",
        "/invocations",
        {"rows": []},
        JSON,
        400,
        "unknown key 'rows'; expected one of: dataframe_split, dataframe_records, instances, "
        "inputs",
    ),
    (
        "two formats",
        "/invocations",
        {"instances": [], "inputs": []},
        JSON,
        400,
        "expected exactly one of: dataframe_split, dataframe_records, instances, inputs",
    ),
    (
        "instances: []",
        "/invocations",
        {"instances": []},
        JSON,
        400,
        "instances: the batch is empty (0 rows); send at least one row",
    ),
    (
        "dataframe_records: []",
        "/invocations",
        {"dataframe_records": []},
        JSON,
        400,
        "dataframe_records: the batch is empty (0 rows); send at least one row",
    ),
    (
        "dataframe_split without rows",
        "/invocations",
        {"dataframe_split": {"columns": list(TYPES), "data": []}},
        JSON,
        400,
        "dataframe_split: the batch is empty (0 rows); send at least one row",
    ),
    (
        "inputs with empty columns",
        "/invocations",
        {"inputs": {t: [] for t in TYPES}},
        JSON,
        400,
        "inputs: the batch is empty (0 rows); send at least one row",
    ),
    (
        "a column given twice",
        "/invocations",
        {"dataframe_split": {"columns": [*TYPES, "BOOL"], "data": [[*VALID.values(), True]]}},
        JSON,
        400,
        "dataframe_split: column 'BOOL' appears twice",
    ),
    (
        "a row that is not a list",
        "/invocations",
        {"dataframe_split": {"columns": list(TYPES), "data": [5]}},
        JSON,
        400,
        "dataframe_split.data[0]: expected a row (a list of values)",
    ),
    (
        "a short row",
        "/invocations",
        {"dataframe_split": {"columns": list(TYPES), "data": [[1, 2]]}},
        JSON,
        400,
        "dataframe_split.data[0]: expected a row of 13 values, got 2",
    ),
    (
        "a short instance",
        "/invocations",
        {"instances": [[1, 2]]},
        JSON,
        400,
        "instances[0]: expected a row of 13 values, got 2",
    ),
    (
        "a record without a column",
        "/invocations",
        {"dataframe_records": [{"BOOL": True}]},
        JSON,
        400,
        "dataframe_records[0]: missing column 'UINT8'",
    ),
    (
        "an unknown named input",
        "/invocations",
        {"inputs": {"colour": [1]}},
        JSON,
        400,
        f"inputs.colour: unknown input; the model's inputs are: {INPUT_NAMES}",
    ),
    # CSV
    (
        "an empty CSV",
        "/invocations",
        "",
        {"Content-Type": "text/csv"},
        400,
        "the CSV body is empty; expected a header row and data rows",
    ),
    (
        "a CSV header only",
        "/invocations",
        CSV_HEADER,
        {"Content-Type": "text/csv"},
        400,
        "csv: the header row is not followed by any data row; send at least one",
    ),
    (
        "a CSV header and blank lines",
        "/invocations",
        CSV_HEADER + "\n\n",
        {"Content-Type": "text/csv"},
        400,
        "csv: the header row is not followed by any data row; send at least one",
    ),
    (
        "a ragged CSV row",
        "/invocations",
        CSV_HEADER + CSV_ROW + "\n" + "true,1\n",
        {"Content-Type": "text/csv"},
        400,
        "csv line 4: expected a row of 13 values, got 2",
    ),
    (
        "a CSV column given twice",
        "/invocations",
        CSV_HEADER.replace("BYTES", "BOOL") + CSV_ROW,
        {"Content-Type": "text/csv"},
        400,
        "csv: column 'BOOL' appears twice",
    ),
    (
        "a CSV column missing",
        "/invocations",
        CSV_HEADER.replace("BYTES", "TEXT") + CSV_ROW,
        {"Content-Type": "text/csv"},
        400,
        f"csv: missing column 'BYTES'; the model's inputs are: {INPUT_NAMES}",
    ),
    (
        "a CSV that is not UTF-8",
        "/invocations",
        (CSV_HEADER + CSV_ROW).encode().replace(b",a\n", b",\xe9\n"),
        {"Content-Type": "text/csv; charset=latin-1"},
        400,
        "the CSV body is not UTF-8: byte 0xe9 at offset 113; send UTF-8 text",
    ),
    (
        "a CSV field over the csv module's limit",
        "/invocations",
        CSV_HEADER + "x" * 140_000 + "\n",
        {"Content-Type": "text/csv"},
        400,
        "csv line 2: field larger than field limit (131072)",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_malformed_request_gets_a_4xx_naming_what_is_wrong(
    server: Server, path: str, body: Any, headers: dict[str, str], status: int, message: str
) -> None:
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    got, _, answer = server.request("POST", path, raw, headers)
    error = json.loads(answer)
    assert (got, error.get("error") or error.get("message")) == (status, message)
    if path == "/invocations":
        assert error["error_code"] == "BAD_REQUEST"
    assert server.json("POST", INFER, {"inputs": tensors()})[0] == 200  # still serving


def binary_request(
    binary: bytes, header_length: str | None = None, **parameters: Any
) -> tuple[bytes, dict[str, str]]:
    """A Triton binary request: INT32 as ``binary`` (with ``parameters``), the rest as JSON."""
    inputs = tensors(INT32={"parameters": {"binary_data_size": 4, **parameters}})
    del inputs[7]["data"]
    header = json.dumps({"inputs": inputs}).encode()
    length = str(len(header)) if header_length is None else header_length
    return header + binary, {"Inference-Header-Content-Length": length}


FOUR = b"\x01\x00\x00\x00"
BINARY_CASES = [
    (
        "a header length that is not a number",
        binary_request(FOUR, "abc"),
        "Inference-Header-Content-Length: expected the JSON header's length in bytes (a whole "
        "number), got 'abc'",
    ),
    (
        "a negative header length",
        binary_request(FOUR, "-5"),
        "Inference-Header-Content-Length: expected the JSON header's length in bytes (a whole "
        "number), got '-5'",
    ),
    (
        "a header length with a sign",
        binary_request(FOUR, "+5"),
        "Inference-Header-Content-Length: expected the JSON header's length in bytes (a whole "
        "number), got '+5'",
    ),
    (
        "a header length with underscores",
        binary_request(FOUR, "1_0"),
        "Inference-Header-Content-Length: expected the JSON header's length in bytes (a whole "
        "number), got '1_0'",
    ),
    (
        "a zero header length",
        binary_request(FOUR, "0"),
        "Inference-Header-Content-Length is 0, but the body has 923 bytes",
    ),
    (
        "a huge header length",
        binary_request(FOUR, "9" * 30),
        "Inference-Header-Content-Length: expected the JSON header's length in bytes (a whole "
        "number), got '999999999999999999999999999999'",
    ),
    (
        "a header length past the body",
        binary_request(FOUR, "99999"),
        "Inference-Header-Content-Length is 99999, but the body has 923 bytes",
    ),
    (
        "a header length inside the JSON",
        binary_request(FOUR, "10"),
        "the body is not valid JSON: unexpected end of data: line 1 column 11 (char 10)",
    ),
    (
        "binary_data_size negative",
        binary_request(FOUR, binary_data_size=-4),
        "inputs[7] ('INT32').parameters.binary_data_size: expected a number of bytes (an integer "
        ">= 0), got -4",
    ),
    (
        "binary_data_size a boolean",
        binary_request(FOUR, binary_data_size=True),
        "inputs[7] ('INT32').parameters.binary_data_size: expected a number of bytes (an integer "
        ">= 0), got True",
    ),
    (
        "binary_data_size a string",
        binary_request(FOUR, binary_data_size="12"),
        "inputs[7] ('INT32').parameters.binary_data_size: expected a number of bytes (an integer "
        ">= 0), got '12'",
    ),
    (
        "binary_data_size past the data",
        binary_request(FOUR[:2]),
        "inputs[7] ('INT32').parameters.binary_data_size: 4 bytes, but only 2 bytes of binary "
        "data follow the header",
    ),
    (
        "binary data the shape does not fit",
        binary_request(FOUR * 2, binary_data_size=8),
        "inputs[7] ('INT32'): 8 bytes of binary data, but the shape needs 1 element of 4 bytes",
    ),
    (
        "binary data no input claims",
        binary_request(FOUR + b"\x00" * 4),
        "4 bytes of binary data follow the inputs that no input claims with "
        "parameters.binary_data_size",
    ),
]


@pytest.mark.parametrize(
    ("request_", "message"), [case[1:] for case in BINARY_CASES], ids=[c[0] for c in BINARY_CASES]
)
def test_a_malformed_binary_request_gets_a_400_naming_what_is_wrong(
    server: Server, request_: tuple[bytes, dict[str, str]], message: str
) -> None:
    body, headers = request_
    status, _, answer = server.request("POST", INFER, body, headers)
    assert (status, json.loads(answer)) == (400, {"error": message})


def test_a_binary_request_with_all_its_bytes_is_served(server: Server) -> None:
    inputs = tensors(3, INT32={"parameters": {"binary_data_size": 12}})
    del inputs[7]["data"]
    header = json.dumps({"inputs": inputs}).encode()
    status, _, answer = server.request(
        "POST",
        INFER,
        header + b"\x01\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff",
        {"Inference-Header-Content-Length": str(len(header))},
    )
    assert status == 200, answer
    outputs = {o["name"]: o["data"] for o in json.loads(answer)["outputs"]}
    assert outputs["int32"] == [1, 2, -1]


def send(server: Server, body: bytes, encoding: str, path: str = "/invocations") -> Any:
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    status, response_headers, answer = server.request("POST", path, body, headers)
    return status, json.loads(answer), response_headers


def test_gzip_and_deflate_bodies_are_accepted(server: Server) -> None:
    body = json.dumps({"dataframe_records": records(2)}).encode()
    raw_deflate = zlib.compressobj(wbits=-15)
    for encoding, compressed in (
        ("gzip", gzip.compress(body)),
        ("x-gzip", gzip.compress(body)),
        ("deflate", zlib.compress(body)),
        ("deflate", raw_deflate.compress(body) + raw_deflate.flush()),
        ("gzip, gzip", gzip.compress(gzip.compress(body))),
        ("identity", body),
        ("gzip", gzip.compress(body[:40]) + gzip.compress(body[40:])),  # two members
    ):
        status, answer, _ = send(server, compressed, encoding)
        assert status == 200, (encoding, answer)
        assert answer["predictions"]["uint8"] == [1, 1]
    csv = gzip.compress((CSV_HEADER + CSV_ROW).encode())
    status, _, answer = server.request(
        "POST", "/invocations", csv, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}
    )
    assert status == 200, answer


def test_bad_compressed_bodies_get_a_4xx(server: Server) -> None:
    body = json.dumps({"inputs": tensors()}).encode()
    status, answer, headers = send(server, body, "br", INFER)
    assert (status, answer) == (
        415,
        {
            "error": "unsupported Content-Encoding 'br'; send the body uncompressed, or "
            "compressed with gzip or deflate"
        },
    )
    assert headers["accept-encoding"] == "gzip, deflate"
    assert send(server, body, "gzip, zstd", INFER)[:2] == (
        415,
        {
            "error": "unsupported Content-Encoding 'zstd'; send the body uncompressed, or "
            "compressed with gzip or deflate"
        },
    )
    assert send(server, body, "gzip", INFER)[:2] == (
        400,
        {
            "error": "the body is not valid gzip data (Error -3 while decompressing data: "
            "incorrect header check); send what Content-Encoding says"
        },
    )
    assert send(server, gzip.compress(body)[:-30], "gzip", INFER)[:2] == (
        400,
        {"error": "the gzip body is cut short; send all of it"},
    )
    assert send(server, zlib.compress(body) + b"junk", "deflate", INFER)[:2] == (
        400,
        {"error": "4 bytes follow the end of the deflate data"},
    )


def test_the_size_limit_applies_after_decompression(server: Server) -> None:
    # 256k is the limit here: a 1 MiB body compresses to a few kilobytes
    bomb = gzip.compress(b"[" + b"0," * (512 * 1024) + b"0]")
    assert len(bomb) < 4096
    status, answer, _ = send(server, bomb, "gzip", INFER)
    assert (status, answer) == (
        413,
        {
            "error": "the request body inflates to more than the limit of 262144 bytes "
            "(--max-body-size)"
        },
    )


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        chunks = (b"x" * 65536 for _ in range(5))  # 320k, no Content-Length
        conn.request("POST", INFER, body=chunks, headers=JSON, encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (
            413,
            {
                "error": "the request body is larger than the limit of 262144 bytes "
                "(--max-body-size)"
            },
        )
        assert response.getheader("connection") == "close"
    finally:
        conn.close()
