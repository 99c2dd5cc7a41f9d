"""MLflow's scoring formats for ``POST /invocations``: JSON with one of ``dataframe_split``,
``dataframe_records``, ``instances`` or ``inputs``, or CSV with a header row.

Tables map to the signature as :mod:`mlbuild.serve.table` says.
https://mlflow.org/docs/latest/deployment/deploy-model-locally.html
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np
import orjson

from mlbuild.serve.body import mentions_bool, parse_json
from mlbuild.serve.convert import Locate
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.runtime import ModelRuntime
from mlbuild.serve.table import decode_table

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_json(runtime: ModelRuntime, body: bytes) -> dict[str, np.ndarray[Any, Any]]:
    request = parse_json(body)
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
    decoder = _Decoder(runtime, mentions_bool(body))
    if key == "dataframe_split":
        inputs = decoder.split(value)
    elif key == "dataframe_records":
        inputs = decoder.records(value, key)
    else:
        inputs = decoder.tensors(value, key)
    runtime.check(inputs, dict.fromkeys(inputs, key))
    return inputs


def decode_csv(runtime: ModelRuntime, text: str) -> dict[str, np.ndarray[Any, Any]]:
    """A CSV table with a header row (values are parsed by the column's datatype)."""
    reader = csv.reader(io.StringIO(text))
    header = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if header is None:
                header = row
            elif row:  # blank lines carry no row
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise InvalidInput(f"csv line {reader.line_num}: {exc}") from None
    if header is None:
        raise InvalidInput("the CSV body is empty; expected a header row and data rows")
    if not rows:
        raise InvalidInput("csv: the header row is not followed by any data row; send at least one")
    return decode_csv_rows(runtime, header, rows, lines)


def decode_csv_rows(
    runtime: ModelRuntime, header: list[str], rows: list[list[str]], lines: list[int]
) -> dict[str, np.ndarray[Any, Any]]:
    """CSV data rows (text cells) under ``header``; ``lines`` are their line numbers."""
    inputs = decode_table(
        runtime, header, rows, "csv", lambda i: f"csv line {lines[i]}", parse=True
    )
    runtime.check(inputs, dict.fromkeys(inputs, "csv"))
    return inputs


def decode_rows(runtime: ModelRuntime, rows: list[Any], where: str) -> dict[str, Any]:
    """Parsed JSON rows — ``{column: value}`` objects or lists — as checked inputs."""
    inputs = _Decoder(runtime, True).tensors(rows, where)
    runtime.check(inputs, dict.fromkeys(inputs, where))
    return inputs


def encode(outputs: dict[str, np.ndarray[Any, Any]]) -> bytes:
    """``{"predictions": [...]}`` for one output, ``{"predictions": {name: [...]}}`` for more."""
    values = {name: _values(array) for name, array in outputs.items()}
    if len(values) == 1:
        return orjson.dumps({"predictions": next(iter(values.values()))})
    return orjson.dumps({"predictions": values})


class _Decoder:
    """The JSON formats, for one request (``may_hold_bools``: its text has true or false)."""

    def __init__(self, runtime: ModelRuntime, may_hold_bools: bool) -> None:
        self.runtime = runtime
        self.may_hold_bools = may_hold_bools

    def split(self, value: Any) -> dict[str, np.ndarray[Any, Any]]:
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise InvalidInput('dataframe_split: expected {"columns": [...], "data": [[...]]}')
        columns = value.get("columns")
        if columns is not None and not isinstance(columns, list):
            raise InvalidInput("dataframe_split.columns: expected a list of column names")
        return self._table(columns, value["data"], "dataframe_split", ".data")

    def records(self, value: Any, where: str) -> dict[str, np.ndarray[Any, Any]]:
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInput(f"{where}: expected a list of {{column: value}} objects")
        runtime = self.runtime
        if not runtime.signature.is_columnar:
            raise InvalidInput(
                f"{where}: this model's input is a matrix ({', '.join(runtime.inputs)}), not "
                "named columns; send rows with 'dataframe_split' or 'inputs'"
            )
        inputs = {}
        for name in runtime.inputs:
            values = []
            for number, record in enumerate(value):
                if name not in record:
                    raise InvalidInput(f"{where}[{number}]: missing column '{name}'")
                values.append(record[name])

            def locate(index: tuple[int, ...], name: str = name) -> str:
                return f"{where}[{index[0]}] column '{name}'"

            inputs[name] = self._array(name, values, f"{where} column '{name}'", locate)
        return inputs

    def tensors(self, value: Any, where: str) -> dict[str, np.ndarray[Any, Any]]:
        """``instances``/``inputs``: a list (rows, or the one input's values) or {name: values}."""
        runtime = self.runtime
        if isinstance(value, dict):
            inputs = {}
            for name, values in value.items():
                if name not in runtime.inputs:
                    raise InvalidInput(
                        f"{where}.{name}: unknown input; the model's inputs are: "
                        + ", ".join(runtime.inputs)
                    )
                inputs[name] = self._array(name, values, f"{where}.{name}")
            return inputs
        if not isinstance(value, list):
            raise InvalidInput(f"{where}: expected a list of rows or an object of named inputs")
        if value and all(isinstance(r, dict) for r in value):
            return self.records(value, where)
        if len(runtime.inputs) != 1:
            if runtime.signature.is_columnar:
                return self._table(None, value, where, "")
            raise InvalidInput(
                f"{where}: the model has several inputs ({', '.join(runtime.inputs)}); send "
                "{name: values}"
            )
        name = next(iter(runtime.inputs))
        return {name: self._array(name, value, where)}

    def _table(
        self, columns: list[Any] | None, rows: list[Any], where: str, data: str
    ) -> dict[str, np.ndarray[Any, Any]]:
        return decode_table(
            self.runtime,
            columns,
            rows,
            where,
            lambda i: f"{where}{data}[{i}]",
            parse=False,
            may_hold_bools=self.may_hold_bools,
        )

    def _array(
        self, name: str, values: Any, where: str, locate: Locate | None = None
    ) -> np.ndarray[Any, Any]:
        return self.runtime.array(
            name,
            values,
            where,
            locate,
            may_hold_bools=self.may_hold_bools,
            may_hold_nonfinite=False,  # parsed JSON holds no NaN or infinity
        )


def _values(array: np.ndarray[Any, Any]) -> list[Any]:
    values: list[Any] = array.tolist()
    if array.dtype.kind == "O":
        return [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    return values
