"""The Open Inference Protocol (v2) inference request and response, with Triton's binary tensor
data extension.

A binary request is a JSON header of ``Inference-Header-Content-Length`` bytes followed by the raw
bytes of each input whose ``parameters.binary_data_size`` is set, in the order of ``inputs``:
little-endian numbers, one byte per BOOL, and for BYTES each element as a 4-byte little-endian
length then its bytes. A response carries an output the same way when the request asks for it
(``outputs[i].parameters.binary_data`` or ``parameters.binary_data_output``).
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson

from mlbuild.serve.body import mentions_bool, parse_json
from mlbuild.serve.convert import check_finite, json_path
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.runtime import ModelRuntime


def decode_request(
    runtime: ModelRuntime, body: bytes, header_length: bytes | None
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """The request's JSON and its inputs as validated arrays, or :class:`InvalidInput`.

    ``header_length`` is the raw ``Inference-Header-Content-Length`` header, if sent."""
    if header_length is not None:
        length = _header_length(header_length, len(body))
        header = body[:length]
        binary = memoryview(body)[length:]
    else:
        header = body
        binary = memoryview(b"")
    request = parse_json(header)
    if not isinstance(request, dict):
        raise InvalidInput("expected a JSON object with 'inputs'")
    bools = mentions_bool(header)
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    where: dict[str, str] = {}
    offset = 0
    for index, item in enumerate(raw_inputs):
        name, array, used = _tensor(runtime, item, index, binary[offset:], len(body), bools)
        if name in inputs:
            raise InvalidInput(f"inputs[{index}] ('{name}'): input given twice")
        inputs[name] = array
        where[name] = f"inputs[{index}] ('{name}').shape"
        offset += used
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes of binary data follow the inputs that no input "
            "claims with parameters.binary_data_size"
        )
    runtime.check(inputs, where)
    return request, inputs


def _tensor(
    runtime: ModelRuntime,
    item: Any,
    index: int,
    binary: memoryview,
    body_size: int,
    may_hold_bools: bool,
) -> tuple[str, np.ndarray[Any, Any], int]:
    """One input tensor: its name, its values shaped, and the bytes of ``binary`` it took."""
    at = f"inputs[{index}]"
    if not isinstance(item, dict):
        raise InvalidInput(f"{at}: expected a tensor object with name, shape, datatype, data")
    name = item.get("name")
    if not isinstance(name, str) or name not in runtime.inputs:
        raise InvalidInput(
            f"{at}.name: unknown input {_show(name)}; the model's inputs are: "
            + ", ".join(runtime.inputs)
        )
    at = f"inputs[{index}] ('{name}')"
    spec = runtime.inputs[name]
    datatype = item.get("datatype")
    if datatype != spec.tensor.datatype:
        raise InvalidInput(f"{at}.datatype: expected {spec.tensor.datatype}, got {_show(datatype)}")
    shape = _shape(item.get("shape"), f"{at}.shape", body_size)
    size = math.prod(shape)
    parameters = item.get("parameters")
    binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if binary_size is None:
        if "data" not in item:
            raise InvalidInput(f"{at}: missing 'data'")
        array = runtime.array(
            name,
            item["data"],
            f"{at}.data",
            may_hold_bools=may_hold_bools,
            may_hold_nonfinite=False,  # JSON cannot carry NaN or infinity
        )
        if array.size != size:
            raise InvalidInput(f"{at}.data: {_values(array.size)}, but shape {shape} needs {size}")
        return name, array.reshape(shape), 0
    where = f"{at}.parameters.binary_data_size"
    if not isinstance(binary_size, int) or isinstance(binary_size, bool) or binary_size < 0:
        raise InvalidInput(
            f"{where}: expected a number of bytes (an integer >= 0), got {_show(binary_size)}"
        )
    if binary_size > len(binary):
        raise InvalidInput(
            f"{where}: {binary_size} bytes, but only {len(binary)} bytes of binary data follow "
            "the header"
        )
    array = _from_bytes(spec.dtype, binary[:binary_size], size, at)
    return name, array.reshape(shape), binary_size


def _header_length(raw: bytes, body_size: int) -> int:
    """The JSON header's length from ``Inference-Header-Content-Length``."""
    text = raw.strip()
    if not text.isdigit() or len(text) > 19:  # isdigit: no sign, no spaces, no "1_000"
        raise InvalidInput(
            "Inference-Header-Content-Length: expected the JSON header's length in bytes (a "
            f"whole number), got {_show(raw.decode('latin-1'))}"
        )
    length = int(text)
    if not 0 < length <= body_size:
        raise InvalidInput(
            f"Inference-Header-Content-Length is {length}, but the body has {body_size} bytes"
        )
    return length


def _shape(shape: Any, where: str, body_size: int) -> list[int]:
    """A request's shape: concrete sizes, no larger than the body could carry values for."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInput(f"{where}: expected a list of sizes (integers >= 0), got {_show(shape)}")
    # Every value takes at least one byte of the body (JSON or binary), and a size of 0 still
    # multiplies the others' positions, so no real request exceeds this; it also keeps the
    # product from growing huge ([0, 2**62]) before numpy or the model ever see it.
    positions = 1
    for d in shape:
        positions *= max(d, 1)
        if positions > body_size:
            raise InvalidInput(
                f"{where}: {_show(shape)} is too large: a request of {body_size} bytes holds at "
                f"most {body_size} values"
            )
    return shape


def encode_response(
    runtime: ModelRuntime, request: dict[str, Any], outputs: dict[str, np.ndarray[Any, Any]]
) -> tuple[bytes, int | None]:
    """The response body and, for a binary one, its JSON header's length."""
    parameters = request.get("parameters")
    all_binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    wanted: list[tuple[str, bool]]
    requested = request.get("outputs")
    if isinstance(requested, list) and requested:
        wanted = []
        for index, item in enumerate(requested):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or name not in outputs:
                raise InvalidInput(
                    f"outputs[{index}].name: unknown output {_show(name)}; the model's outputs "
                    f"are: {', '.join(outputs)}"
                )
            params = item.get("parameters")
            binary = isinstance(params, dict) and params.get("binary_data") is True
            wanted.append((name, binary or (all_binary and not isinstance(params, dict))))
    else:
        wanted = [(name, all_binary) for name in outputs]
    tensors = []
    chunks = []
    for name, binary in wanted:
        array = outputs[name]
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": runtime.outputs[name].tensor.datatype,
            "shape": list(array.shape),
        }
        if binary:
            chunk = _to_bytes(array)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = _json_values(array)
        tensors.append(tensor)
    response: dict[str, Any] = {
        "model_name": runtime.name,
        "model_version": runtime.version,
        "outputs": tensors,
    }
    if "id" in request:
        response["id"] = request["id"]
    header = orjson.dumps(response)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _from_bytes(dtype: np.dtype[Any], data: memoryview, size: int, at: str) -> np.ndarray[Any, Any]:
    if dtype.kind == "O":
        return _bytes_elements(data, size, at)
    item = dtype.itemsize
    if len(data) != size * item:
        raise InvalidInput(
            f"{at}: {len(data)} bytes of binary data, but the shape needs {size} "
            f"element{'' if size == 1 else 's'} of {item} byte{'s' if item > 1 else ''}"
        )
    array = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)
    if dtype.kind == "b" and np.frombuffer(data, dtype=np.uint8).max(initial=0) > 1:
        raise InvalidInput(f"{at}: BOOL bytes must be 0 or 1")
    check_finite(array, json_path(f"{at} binary data"))
    return array


def _bytes_elements(data: memoryview, size: int, at: str) -> np.ndarray[Any, Any]:
    elements: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise InvalidInput(f"{at}: BYTES element length cut short")
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + length > len(data):
            raise InvalidInput(f"{at}: BYTES element of {length} bytes runs past the data")
        elements.append(bytes(data[offset : offset + length]))
        offset += length
    if len(elements) != size:
        raise InvalidInput(f"{at}: {len(elements)} BYTES elements, but the shape needs {size}")
    array = np.empty(size, dtype=object)
    array[:] = elements
    return array


def _to_bytes(array: np.ndarray[Any, Any]) -> bytes:
    if array.dtype.kind == "O":
        parts = []
        for value in array.ravel().tolist():
            raw = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _json_values(array: np.ndarray[Any, Any]) -> list[Any]:
    values: list[Any] = array.ravel().tolist()
    if array.dtype.kind == "O":
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values


def _values(count: int) -> str:
    return f"{count} value{'' if count == 1 else 's'}"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
