"""The fast tier: the boundaries of the value and body limits, in-process (the server tests
cover the same code through real HTTP)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import numpy as np
import pytest

from mlbuild.serve.body import codings, decompress
from mlbuild.serve.convert import to_array
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.signature import NUMPY_OF, Signature


def convert(datatype: str, values: Any) -> Any:
    return to_array(values, datatype, NUMPY_OF[datatype], "x").tolist()


def refusal(datatype: str, values: Any) -> str:
    with pytest.raises(InvalidInput) as refused:
        to_array(values, datatype, NUMPY_OF[datatype], "x")
    return refused.value.message


@pytest.mark.parametrize(
    "datatype", ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
)
def test_each_integer_type_holds_exactly_its_range(datatype: str) -> None:
    info = np.iinfo(NUMPY_OF[datatype])
    low, high = int(info.min), int(info.max)
    assert convert(datatype, [low, high]) == [low, high]
    assert convert(datatype, [[low], [high]]) == [[low], [high]]
    span = f"{datatype} ({low} to {high})"
    assert refusal(datatype, [low, high + 1]) == f"x[1]: {high + 1} is out of range for {span}"
    assert refusal(datatype, [[0], [low - 1]]) == f"x[1][0]: {low - 1} is out of range for {span}"


def test_float_types_hold_up_to_their_largest_magnitude() -> None:
    assert convert("FP16", [65504, -65504.0]) == [65504.0, -65504.0]
    assert refusal("FP16", [65505.0]) == (
        "x[0]: 65505.0 is out of range for FP16 (largest magnitude 65504)"
    )
    assert convert("FP32", [3.4028234663852886e38]) == [3.4028234663852886e38]
    assert refusal("FP32", [1, -3.5e38]) == (
        "x[1]: -3.5e+38 is out of range for FP32 (largest magnitude 3.4028235e+38)"
    )
    assert refusal("FP16", [-(2**63)]) == (
        "x[0]: -9223372036854775808 is out of range for FP16 (largest magnitude 65504)"
    )
    assert convert("FP32", [1e-50]) == [0.0]  # underflow rounds to zero, as documented
    assert convert("FP64", [1e308, 2**63]) == [1e308, 9.223372036854776e18]


def test_nan_and_infinity_are_refused_for_every_float_type() -> None:
    for datatype in ("FP16", "FP32", "FP64"):
        assert refusal(datatype, [1.0, float("nan")]) == (
            "x[1]: nan is refused; send finite numbers (NaN and infinity are not accepted)"
        )
        assert refusal(datatype, [float("-inf")]).startswith("x[0]: -inf is refused")


def test_booleans_strings_and_nulls_are_not_numbers() -> None:
    assert refusal("INT64", [1, True]) == "x[1]: expected INT64 values, got a boolean"
    assert refusal("FP64", [[1.5], [False]]) == "x[1][0]: expected FP64 values, got a boolean"
    assert refusal("FP64", [True, False]) == "x: expected FP64 values, got booleans"
    assert refusal("UINT8", ["1"]) == "x: expected UINT8 values, got strings"
    assert refusal("INT32", [1, None]) == "x[1]: expected INT32 values, got null"
    assert refusal("BOOL", [True, 1]) == "x: expected BOOL values, got integers"
    assert refusal("BYTES", ["a", 2.5]) == "x[1]: expected BYTES values, got the number 2.5"
    assert refusal("BYTES", ["a", {}]) == "x[1]: expected BYTES values, got an object"
    assert convert("BYTES", ["a", "ü"]) == ["a", "ü"]


def test_a_scan_for_booleans_is_skipped_only_when_asked() -> None:
    array = to_array([1, True], "INT64", NUMPY_OF["INT64"], "x", may_hold_bools=False)
    assert array.tolist() == [1, 1]  # the caller promised the JSON text had no true/false


def test_a_body_inflates_to_exactly_the_limit_and_not_one_byte_more() -> None:
    body = b"x" * 1000
    assert decompress(gzip.compress(body), ("gzip",), 1000) == body
    with pytest.raises(InvalidInput) as refused:
        decompress(gzip.compress(body + b"x"), ("gzip",), 1000)
    assert (refused.value.status, refused.value.message) == (
        413,
        "the request body inflates to more than the limit of 1000 bytes (--max-body-size)",
    )
    # each coding is limited, not only the last: a bomb inside a gzip inside a deflate
    inner = gzip.compress(b"0" * 100_000)
    with pytest.raises(InvalidInput) as refused:
        decompress(zlib.compress(inner), ("gzip", "deflate"), 1000)
    assert refused.value.status == 413


def test_content_encoding_headers() -> None:
    assert codings(b"gzip") == ("gzip",)
    assert codings(b" GZIP , identity,deflate ") == ("gzip", "deflate")
    assert codings(b"") == ()
    for header, shown in ((b"br", "br"), (b"gzip, compress", "compress"), (b"\xff", "\\xff")):
        with pytest.raises(InvalidInput) as refused:
            codings(header)
        assert refused.value.status == 415
        assert refused.value.message.startswith(f"unsupported Content-Encoding '{shown}'")
        assert refused.value.headers == ((b"accept-encoding", b"gzip, deflate"),)


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {"name": "x", "datatype": "FP64", "shape": []},
            "tensor 'x': shape [] is not a list of sizes (integers >= 0, or -1 for any size), "
            "the batch first",
        ),
        (
            {"name": "x", "datatype": "FP64", "shape": [-1, -2]},
            "tensor 'x': shape [-1, -2] is not a list of sizes (integers >= 0, or -1 for any "
            "size), the batch first",
        ),
        (
            {"name": "x", "datatype": "FP64", "shape": [-1, True]},
            "tensor 'x': shape [-1, True] is not a list of sizes (integers >= 0, or -1 for any "
            "size), the batch first",
        ),
    ],
)
def test_a_signature_file_with_impossible_shapes_is_refused(
    tensor: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        Signature.from_json({"inputs": [tensor], "outputs": []})
    assert str(refused.value) == message


def test_a_signature_file_naming_a_tensor_twice_is_refused() -> None:
    x = {"name": "x", "datatype": "FP64", "shape": [-1]}
    with pytest.raises(ValueError) as refused:
        Signature.from_json({"inputs": [x, x], "outputs": []})
    assert str(refused.value) == "inputs: 'x' is named twice"
