"""Tables — CSV, MLflow's ``dataframe_split``, lists of rows — as a model's inputs.

A table maps to the signature by column name when every input is a column (shape ``[-1]``); for
a model with one matrix input (``[-1, N]``) a table's rows are that matrix, columns in order.
CSV cells are text, parsed by the column's datatype here; JSON cells are values already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlbuild.serve.errors import InvalidInput
from mlbuild.serve.runtime import ModelRuntime

RowWhere = Callable[[int], str]  # row index → its location: "csv line 4", "dataframe_split.data[2]"


def decode_table(
    runtime: ModelRuntime,
    columns: list[Any] | None,
    rows: list[Any],
    where: str,
    row_where: RowWhere,
    *,
    parse: bool,
    may_hold_bools: bool = True,
) -> dict[str, np.ndarray[Any, Any]]:
    """Rows of a table → inputs; ``columns`` None means the signature's order.

    ``parse`` says the cells are CSV text, to be parsed by each column's datatype."""
    specs = runtime.inputs
    columnar = runtime.signature.is_columnar
    if columns is None and columnar:
        columns = list(specs)
    elif columns is not None:
        _no_duplicates(columns, where)
    width = len(columns) if columns is not None else None
    for number, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput(f"{row_where(number)}: expected a row (a list of values)")
        if width is not None and len(row) != width:
            raise InvalidInput(
                f"{row_where(number)}: expected a row of {width} values, got {len(row)}"
            )
    if not columnar:
        return _matrix(runtime, columns, rows, where, row_where, parse, may_hold_bools)
    assert columns is not None
    index = {str(c): i for i, c in enumerate(columns)}
    missing = [n for n in specs if n not in index]
    if missing:
        raise InvalidInput(
            f"{where}: missing column{'s' if len(missing) > 1 else ''} "
            + ", ".join(f"'{m}'" for m in missing)
            + f"; the model's inputs are: {', '.join(specs)}"
        )
    inputs = {}
    for name, spec in specs.items():
        at = index[name]

        def locate(i: tuple[int, ...], name: str = name) -> str:
            return f"{row_where(i[0])} column '{name}'"

        cells = [row[at] for row in rows]
        values = _parse_column(cells, spec.dtype.kind, locate) if parse else cells
        inputs[name] = runtime.array(
            name,
            values,
            f"{where} column '{name}'",
            locate,
            may_hold_bools=may_hold_bools,
            may_hold_nonfinite=parse,  # CSV text can say nan; JSON cannot
            written=cells,
        )
    return inputs


def _matrix(
    runtime: ModelRuntime,
    columns: list[Any] | None,
    rows: list[Any],
    where: str,
    row_where: RowWhere,
    parse: bool,
    may_hold_bools: bool,
) -> dict[str, np.ndarray[Any, Any]]:
    """The rows as the one matrix input of a model whose input is not columns."""
    specs = runtime.inputs
    if len(specs) != 1:
        raise InvalidInput(
            f"{where}: this model's inputs are tensors ({', '.join(specs)}), not table "
            "columns; send them with 'inputs' as {name: values}"
        )
    name = next(iter(specs))

    def locate(index: tuple[int, ...]) -> str:
        if len(index) == 1:
            return row_where(index[0])
        if parse and columns is not None:
            return f"{row_where(index[0])} column '{columns[index[1]]}'"
        return row_where(index[0]) + "".join(f"[{i}]" for i in index[1:])

    values = rows
    if parse:
        kind = runtime.inputs[name].dtype.kind
        values = []
        for i, row in enumerate(rows):

            def cell(j: tuple[int, ...], i: int = i) -> str:
                return locate((i, j[0]))

            values.append(_parse_column(row, kind, cell))
    array = runtime.array(
        name,
        values,
        where,
        locate,
        may_hold_bools=may_hold_bools,
        may_hold_nonfinite=parse,  # CSV text can say nan; JSON cannot
        written=rows,
    )
    return {name: array}


def _parse_column(
    cells: list[str], kind: str, locate: Callable[[tuple[int, ...]], str]
) -> list[Any]:
    """CSV cells as values of the numpy kind ``kind``, or InvalidInput naming the first bad one."""
    try:
        return [_parse(text, kind) for text in cells]
    except (ValueError, KeyError):
        pass
    expected = {"f": "a number", "b": "true, false, 1 or 0"}.get(kind, "an integer")
    for i, text in enumerate(cells):
        try:
            _parse(text, kind)
        except (ValueError, KeyError):
            raise InvalidInput(f"{locate((i,))}: expected {expected}, got {_show(text)}") from None
    raise AssertionError("unreachable: a cell failed to parse once only")


def _parse(text: str, kind: str) -> Any:
    if kind == "f":
        return float(text)
    if kind in "iu":
        return int(text)
    if kind == "b":
        return _BOOLS[text.strip().lower()]
    return text


_BOOLS = {"true": True, "false": False, "1": True, "0": False}


def _no_duplicates(columns: list[Any], where: str) -> None:
    seen: set[str] = set()
    for column in columns:
        name = str(column)
        if name in seen:
            raise InvalidInput(f"{where}: column '{name}' appears twice")
        seen.add(name)


def _show(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
