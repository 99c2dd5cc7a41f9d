"""Rows of a test file through the model in-process, with the server's own decoding.

The input columns of a test file are decoded by the functions ``/invocations`` and ``mlbuild
predict`` use (CSV cells parsed by datatype, JSON values checked), so a test sees the model
exactly as a client does. Columns the model does not read (expected outputs, labels, groups) are
ignored here. Predictions come back as plain Python lists, one per output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbuild.errors import MlbuildError
from mlbuild.serve import mlflow
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.runtime import ModelRuntime
from mlbuild.testing.tables import Table

Arrays = dict[str, np.ndarray[Any, Any]]
BATCH_ROWS = 4096


class PredictError(MlbuildError):
    """The rows of a test file could not be turned into inputs, or the model failed on them."""


def inputs_of(
    runtime: ModelRuntime, table: Table, first: int = 0, end: int | None = None
) -> Arrays:
    """Rows ``first:end`` of ``table`` as the model's validated inputs."""
    end = len(table.rows) if end is None else end
    rows = table.rows[first:end]
    lines = table.lines[first:end]
    try:
        if table.is_csv:
            cells = [[row[c] for c in table.columns] for row in rows]
            return mlflow.decode_csv_rows(runtime, table.columns, cells, lines)
        return _json_inputs(runtime, table.path, rows, lines)
    except InvalidInput as exc:
        raise PredictError(f"{table.path}: {exc.message}") from None


def _json_inputs(
    runtime: ModelRuntime, path: str, rows: list[dict[str, Any]], lines: list[int]
) -> Arrays:
    inputs = {}
    for name in runtime.inputs:
        values = []
        for row, line in zip(rows, lines, strict=True):
            if name not in row:
                raise InvalidInput(f"line {line}: missing column '{name}'")
            values.append(row[name])

        def locate(index: tuple[int, ...], name: str = name) -> str:
            return f"line {lines[index[0]]} column '{name}'"

        inputs[name] = runtime.array(
            name, values, f"column '{name}'", locate, may_hold_nonfinite=False
        )
    runtime.check(inputs, {name: f"column '{name}'" for name in inputs})
    return inputs


def predict(runtime: ModelRuntime, inputs: Arrays, where: str) -> dict[str, list[Any]]:
    """The model's outputs for ``inputs`` as lists; a model that fails is this test's error."""
    try:
        outputs = runtime.predict(inputs)
    except MlbuildError as exc:
        raise PredictError(f"{where}: the model failed: {exc.message}") from None
    except Exception as exc:  # the model's own code: its failure is the test's, not mlbuild's
        raise PredictError(
            f"{where}: the model's predict() raised {type(exc).__name__}: {exc}"
        ) from None
    return {name: as_list(array) for name, array in outputs.items()}


def predict_table(runtime: ModelRuntime, table: Table) -> dict[str, list[Any]]:
    """Predictions for every row of ``table``, in batches."""
    found: dict[str, list[Any]] = {}
    for first in range(0, len(table.rows), BATCH_ROWS):
        inputs = inputs_of(runtime, table, first, first + BATCH_ROWS)
        for name, values in predict(runtime, inputs, table.path).items():
            found.setdefault(name, []).extend(values)
    return found


def as_list(array: np.ndarray[Any, Any]) -> list[Any]:
    """Rows of an output array as JSON-like values (bytes decoded, like the server answers)."""
    values: list[Any] = array.tolist()
    if array.dtype.kind in "OS":
        return [_text(v) for v in values]
    return values


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def oip_request(runtime: ModelRuntime, inputs: Arrays) -> bytes:
    """An Open Inference Protocol v2 JSON request holding ``inputs``."""
    import json

    body = {
        "inputs": [
            {
                "name": name,
                "datatype": runtime.inputs[name].tensor.datatype,
                "shape": list(array.shape),
                "data": as_list(array.reshape(-1)),
            }
            for name, array in inputs.items()
        ]
    }
    return json.dumps(body).encode()


def oip_rows(answer: Any, name: str, rows: int) -> list[Any]:
    """Output ``name`` of an Open Inference Protocol answer, one value (or list) per row;
    :class:`ValueError` when the answer does not hold it in that shape."""
    if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), list):
        raise ValueError("the answer has no 'outputs' list")
    for output in answer["outputs"]:
        if isinstance(output, dict) and output.get("name") == name:
            data, shape = output.get("data"), output.get("shape")
            if not isinstance(data, list) or not isinstance(shape, list) or not shape:
                raise ValueError(f"output '{name}' has no data or shape")
            if shape[0] != rows or len(data) % max(rows, 1):
                raise ValueError(f"output '{name}' has shape {shape}, not {rows} rows")
            width = len(data) // rows if rows else 0
            if len(shape) == 1:
                return data
            return [data[i * width : (i + 1) * width] for i in range(rows)]
    raise ValueError(f"the answer has no output '{name}'")
