"""``kind: cases``: golden inputs with the outputs the model must give — a class, a value within a
tolerance, or a range (``OUTPUT>=`` / ``OUTPUT<=`` columns)."""

from __future__ import annotations

from typing import Any

from mlbuild.testing.predict import predict_table
from mlbuild.testing.preflight import RANGE_SUFFIXES, tensors
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.tables import Table
from mlbuild.testing.values import is_numeric, parse_value
from mlbuild.testing.verdict import Measured, Verdict, capped


def run(test: CompiledTest, session: Session) -> Verdict:
    assert test.table is not None
    table = session.table(test.table)
    predictions = predict_table(session.runtime(), table)
    outputs = tensors(session.signature(), "outputs")
    tolerance = test.config.get("tolerance", 0.0)
    checks = _checks(table, outputs)
    wrong: list[str] = []
    for index, row in enumerate(table.rows):
        problems = []
        for column, output, bound in checks:
            datatype = outputs[output].datatype
            expected = parse_value(row.get(column), datatype, from_text=table.is_csv)
            if expected is None:
                continue
            got = predictions[output][index]
            allowed = tolerance.get(output, 0.0) if isinstance(tolerance, dict) else tolerance
            problem = _compare(output, got, expected, bound, float(allowed), datatype)
            if problem:
                problems.append(problem)
        if problems:
            wrong.append(f"{_case(test, table, index)}: {'; '.join(problems)}")
    total = len(table.rows)
    measured: Measured = {"cases": total, "wrong": len(wrong)}
    if wrong:
        return Verdict(False, f"{len(wrong)} of {total} cases wrong", capped(wrong), measured)
    return Verdict(True, f"{total} case{'s' if total != 1 else ''} right", [], measured)


def _checks(table: Table, outputs: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(column, output, bound) for each expectation column: bound is ``>=``, ``<=`` or None."""
    found: list[tuple[str, str, str | None]] = []
    for column in table.columns:
        if column in outputs:
            found.append((column, column, None))
            continue
        for suffix in RANGE_SUFFIXES:
            name = column[: -len(suffix)].rstrip()
            if column.endswith(suffix) and name in outputs:
                found.append((column, name, suffix))
    return found


def _compare(
    output: str, got: Any, expected: Any, bound: str | None, tolerance: float, datatype: str
) -> str | None:
    if bound == ">=":
        return None if got >= expected else f"{output} {got!r} is below {expected!r}"
    if bound == "<=":
        return None if got <= expected else f"{output} {got!r} is above {expected!r}"
    if is_numeric(datatype) and tolerance > 0:
        if abs(got - expected) <= tolerance:
            return None
        return f"{output}: expected {expected!r} ± {tolerance:g}, got {got!r}"
    return None if got == expected else f"{output}: expected {expected!r}, got {got!r}"


def _case(test: CompiledTest, table: Table, index: int) -> str:
    name_column = test.config.get("name_column")
    where = table.where(index)
    if name_column and table.rows[index].get(name_column) not in (None, ""):
        return f"{where} ({table.rows[index][name_column]})"
    return where
