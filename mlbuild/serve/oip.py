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

from mlbuild.serve.runtime import InvalidInput, ModelRuntime


def decode_request(
    runtime: ModelRuntime, body: bytes, header_length: int | None
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """The request's JSON and its inputs as validated arrays, or :class:`InvalidInput`."""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise InvalidInput(
                f"Inference-Header-Content-Length is {header_length}, but the body has "
                f"{len(body)} bytes"
            )
        request = _json(body[:header_length])
        binary = memoryview(body)[header_length:]
    else:
        request = _json(body)
        binary = memoryview(b"")
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("'inputs' must be a non-empty list of tensors")
    inputs: dict[str, np.ndarray[Any, Any]] = {}
    where: dict[str, str] = {}
    offset = 0
    for index, item in enumerate(raw_inputs):
        at = f"inputs[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{at}: expected a tensor object with name, shape, datatype, data")
        name = item.get("name")
        if name not in runtime.inputs:
            raise InvalidInput(
                f"{at}.name: unknown input {_show(name)}; the model's inputs are: "
                + ", ".join(runtime.inputs)
            )
        at = f"inputs[{index}] ('{name}')"
        if name in inputs:
            raise InvalidInput(f"{at}: input given twice")
        spec = runtime.inputs[name]
        datatype = item.get("datatype")
        if datatype != spec.tensor.datatype:
            raise InvalidInput(
                f"{at}.datatype: expected {spec.tensor.datatype}, got {_show(datatype)}"
            )
        shape = item.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise InvalidInput(f"{at}.shape: expected a list of sizes (integers >= 0)")
        size = math.prod(shape)
        parameters = item.get("parameters")
        binary_size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if binary_size is not None:
            if not isinstance(binary_size, int) or offset + binary_size > len(binary):
                raise InvalidInput(
                    f"{at}.parameters.binary_data_size: {binary_size} bytes, but only "
                    f"{len(binary) - offset} bytes of binary data follow the header"
                )
            array = _from_bytes(spec.dtype, binary[offset : offset + binary_size], size, at)
            offset += binary_size
        else:
            if "data" not in item:
                raise InvalidInput(f"{at}: missing 'data'")
            array = runtime.array(name, item["data"], f"{at}.data")
            if array.size != size:
                raise InvalidInput(
                    f"{at}.data: {array.size} values, but shape {shape} needs {size}"
                )
        inputs[name] = array.reshape(shape)
        where[name] = f"{at}.shape"
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes of binary data follow the inputs that no input "
            "claims with parameters.binary_data_size"
        )
    runtime.check(inputs, where)
    return request, inputs


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
            if name not in outputs:
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


def _json(body: bytes | memoryview) -> dict[str, Any]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidInput("expected a JSON object with 'inputs'")
    return request


def _from_bytes(dtype: np.dtype[Any], data: memoryview, size: int, at: str) -> np.ndarray[Any, Any]:
    if dtype.kind == "O":
        return _bytes_elements(data, size, at)
    item = dtype.itemsize
    if len(data) != size * item:
        raise InvalidInput(
            f"{at}: {len(data)} bytes of binary data, but the shape needs {size} elements of "
            f"{item} byte{'s' if item > 1 else ''}"
        )
    return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False)


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


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
