"""``mlbuild predict FILE``: score a CSV or JSON Lines file in-process, through the same decoding,
validation and :class:`ModelRuntime` the server uses, in batches.

A CSV file has a header row, like a CSV body sent to ``/invocations``. A JSON Lines file has one
row per line: a ``{column: value}`` object, or a list of values for a model with one matrix input.
The predictions come out in the input's format: CSV with one column per output value, or one JSON
object per line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson

from mlbuild.serve import mlflow
from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.runtime import ModelRuntime

BATCH_ROWS = 4096


def predict_file(runtime: ModelRuntime, path: Path, out: TextIO) -> int:
    """Write predictions for every row of ``path`` to ``out``; return the number of rows.

    Raises :class:`InvalidInput` naming the line of the first row that does not fit the model.
    """
    is_csv = path.suffix.lower() == ".csv"
    rows = 0
    writer: Any = None
    with path.open(encoding="utf-8", newline="") as handle:
        batches = _csv_batches(runtime, handle) if is_csv else _jsonl_batches(runtime, handle)
        for batch in _utf8(batches):
            outputs = runtime.predict(batch)
            count = next(iter(outputs.values())).shape[0]
            if is_csv:
                if writer is None:
                    writer = csv.writer(out, lineterminator="\n")
                    writer.writerow(_header(outputs))
                writer.writerows(_table_rows(outputs))
            else:
                for record in _records(outputs, count):
                    out.write(orjson.dumps(record).decode() + "\n")
            rows += count
    return rows


def _utf8(batches: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    try:
        yield from batches
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not UTF-8 (byte 0x{exc.object[exc.start]:02x} cannot start a "
            "character); save it as UTF-8"
        ) from None


def _csv_batches(runtime: ModelRuntime, handle: TextIO) -> Iterator[dict[str, Any]]:
    reader = csv.reader(handle)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("the CSV file is empty; expected a header row and data rows")
        chunk: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if row:  # blank lines carry no row
                chunk.append(row)
                lines.append(reader.line_num)
            if len(chunk) == BATCH_ROWS:
                yield mlflow.decode_csv_rows(runtime, header, chunk, lines)
                chunk, lines = [], []
    except csv.Error as exc:
        raise InvalidInput(f"csv line {reader.line_num}: {exc}") from None
    if chunk:
        yield mlflow.decode_csv_rows(runtime, header, chunk, lines)


def _jsonl_batches(runtime: ModelRuntime, handle: TextIO) -> Iterator[dict[str, Any]]:
    chunk: list[Any] = []
    first = 1
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            chunk.append(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}: not valid JSON: {exc}") from None
        if len(chunk) == BATCH_ROWS:
            yield _decode_rows(runtime, chunk, first)
            first = number + 1
            chunk = []
    if chunk:
        yield _decode_rows(runtime, chunk, first)


def _decode_rows(runtime: ModelRuntime, rows: list[Any], first: int) -> Any:
    try:
        return mlflow.decode_rows(runtime, rows, "row")
    except InvalidInput as exc:
        raise InvalidInput(f"lines from {first}: {exc.message}") from None


def _header(outputs: dict[str, np.ndarray[Any, Any]]) -> list[str]:
    names = []
    for name, array in outputs.items():
        width = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
        names += [name] if array.ndim == 1 else [f"{name}[{j}]" for j in range(width)]
    return names


def _table_rows(outputs: dict[str, np.ndarray[Any, Any]]) -> Iterator[list[Any]]:
    columns = [a.reshape(a.shape[0], -1).tolist() for a in outputs.values()]
    for parts in zip(*columns, strict=True):
        yield [value for part in parts for value in part]


def _records(outputs: dict[str, np.ndarray[Any, Any]], count: int) -> Iterator[dict[str, Any]]:
    lists = {name: array.tolist() for name, array in outputs.items()}
    for i in range(count):
        yield {name: values[i] for name, values in lists.items()}
