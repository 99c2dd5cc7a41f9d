"""MLflow's scoring formats for ``POST /invocations``: JSON with one of ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs``, or CSV with a header row.

Tables map to the signature by column name when every input is a column (shape ``[-1]``); for a
model with one matrix input (``[-1, N]``) a table's rows are that matrix, columns in order.
https://mlflow.org/docs/latest/deployment/deploy-model-locally.html
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import orjson

from mlbuild.serve.runtime import InvalidInput, ModelRuntime

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_json(runtime: ModelRuntime, body: bytes) -> dict[str, np.ndarray[Any, Any]]:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    if not isinstance(request, dict):
        raise InvalidInput(f"expected a JSON object with one of: {', '.join(FORMATS)}")
    given = [key for key in request if key in FORMATS]
    unknown = [key for key in request if key not in FORMATS]
    if unknown:
        raise InvalidInput(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"expected one of: {', '.join(FORMATS)}"
        )
    if len(given) != 1:
        raise InvalidInput(f"expected exactly one of: {', '.join(FORMATS)}")
    key = given[0]
    value = request[key]
    if key == "dataframe_split":
        inputs = _split(runtime, value)
    elif key == "dataframe_records":
        inputs = _records(runtime, value, key)
    else:
        inputs = _tensors(runtime, value, key)
    runtime.check(inputs, dict.fromkeys(inputs, key))
    return inputs


def decode_csv(runtime: ModelRuntime, text: str) -> dict[str, np.ndarray[Any, Any]]:
    """A CSV table with a header row (values are parsed by the column's datatype)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InvalidInput("the CSV body is empty; expected a header row and data rows")
    header, data = rows[0], [r for r in rows[1:] if r]
    inputs = _table(runtime, header, data, "csv", parse=True)
    runtime.check(inputs, dict.fromkeys(inputs, "csv"))
    return inputs


def decode_rows(runtime: ModelRuntime, rows: list[Any], where: str) -> dict[str, Any]:
    """Parsed JSON rows — ``{column: value}`` objects or lists — as checked inputs."""
    inputs = _tensors(runtime, rows, where)
    runtime.check(inputs, dict.fromkeys(inputs, where))
    return inputs


def encode(outputs: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """``{"predictions": [...]}`` for one output, ``{"predictions": {name: [...]}}`` for more."""
    values = {name: _values(array) for name, array in outputs.items()}
    if len(values) == 1:
        return orjson.dumps({"predictions": next(iter(values.values()))})
    return orjson.dumps({"predictions": values})


def _split(runtime: ModelRuntime, value: Any) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise InvalidInput('dataframe_split: expected {"columns": [...], "data": [[...]]}')
    columns = value.get("columns")
    if columns is not None and not isinstance(columns, list):
        raise InvalidInput("dataframe_split.columns: expected a list of column names")
    return _table(runtime, columns, value["data"], "dataframe_split", parse=False)


def _table(
    runtime: ModelRuntime, columns: list[Any] | None, rows: list[Any], where: str, *, parse: bool
) -> dict[str, np.ndarray[Any, Any]]:
    """Rows of a table → inputs: by column name (columnar signature) or as one matrix."""
    specs = runtime.inputs
    if not runtime.signature.is_columnar:
        if len(specs) != 1:
            raise InvalidInput(
                f"{where}: this model's inputs are tensors ({', '.join(specs)}), not table "
                "columns; send them with 'inputs' as {name: values}"
            )
        name = next(iter(specs))
        data = [[_parse(v, specs[name].dtype.kind) for v in r] for r in rows] if parse else rows
        return {name: runtime.array(name, data, f"{where}.data")}
    if columns is None:
        columns = list(specs)
    index = {str(c): i for i, c in enumerate(columns)}
    missing = [n for n in specs if n not in index]
    if missing:
        raise InvalidInput(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing)
            + f"; the model's inputs are: {', '.join(specs)}"
        )
    width = len(columns)
    for number, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(f"{where}.data[{number}]: expected a row of {width} values")
    inputs = {}
    for name, spec in specs.items():
        at = index[name]
        values = [row[at] for row in rows]
        if parse:
            values = [_parse(v, spec.dtype.kind) for v in values]
        inputs[name] = runtime.array(name, values, f"{where} column '{name}'")
    return inputs


def _records(runtime: ModelRuntime, value: Any, where: str) -> dict[str, np.ndarray[Any, Any]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise InvalidInput(f"{where}: expected a list of {{column: value}} objects")
    if not runtime.signature.is_columnar:
        raise InvalidInput(
            f"{where}: this model's input is a matrix ({', '.join(runtime.inputs)}), not named "
            "columns; send rows with 'dataframe_split' or 'inputs'"
        )
    inputs = {}
    for name in runtime.inputs:
        values = []
        for number, record in enumerate(value):
            if name not in record:
                raise InvalidInput(f"{where}[{number}]: missing column '{name}'")
            values.append(record[name])
        inputs[name] = runtime.array(name, values, f"{where} column '{name}'")
    return inputs


def _tensors(runtime: ModelRuntime, value: Any, where: str) -> dict[str, np.ndarray[Any, Any]]:
    """``instances``/``inputs``: a list (rows, or the one input's values) or {name: values}."""
    if isinstance(value, dict):
        inputs = {}
        for name, values in value.items():
            if name not in runtime.inputs:
                raise InvalidInput(
                    f"{where}.{name}: unknown input; the model's inputs are: "
                    + ", ".join(runtime.inputs)
                )
            inputs[name] = runtime.array(name, values, f"{where}.{name}")
        return inputs
    if not isinstance(value, list):
        raise InvalidInput(f"{where}: expected a list of rows or an object of named inputs")
    if value and all(isinstance(r, dict) for r in value):
        return _records(runtime, value, where)
    if len(runtime.inputs) != 1:
        if runtime.signature.is_columnar:
            return _table(runtime, None, value, where, parse=False)
        raise InvalidInput(
            f"{where}: the model has several inputs ({', '.join(runtime.inputs)}); send "
            "{name: values}"
        )
    name = next(iter(runtime.inputs))
    return {name: runtime.array(name, value, where)}


def _parse(text: str, kind: str) -> Any:
    """A CSV cell as the column's kind wants it; unparsable text stays text (and is refused)."""
    try:
        if kind == "f":
            return float(text)
        if kind in "iu":
            return int(text)
        if kind == "b":
            return {"true": True, "false": False, "1": True, "0": False}[text.strip().lower()]
    except (ValueError, KeyError):
        return text
    return text


def _values(array: np.ndarray[Any, Any]) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind == "O":
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values
