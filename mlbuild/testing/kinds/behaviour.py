"""``kind: invariance`` and ``kind: directional``: change named inputs of every row and require
the prediction to stay the same, or to move the declared way (behavioural tests, as CheckList
calls them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mlbuild.testing.predict import BATCH_ROWS, Arrays, inputs_of, predict
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.verdict import Measured, Verdict, capped

# expect → (what a row that breaks it did, whether a change by delta keeps it)
_MOVES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "increase": ("did not go up", lambda delta: delta > 0),
    "decrease": ("did not go down", lambda delta: delta < 0),
    "not_increase": ("went up", lambda delta: delta <= 0),
    "not_decrease": ("went down", lambda delta: delta >= 0),
}


def run_invariance(test: CompiledTest, session: Session) -> Verdict:
    config = test.config
    tolerance = float(config.get("tolerance", 0.0))
    names = config.get("outputs")
    broken: list[str] = []
    rows = 0
    for where, before, after in _pairs(test, session):
        for index in range(len(where)):
            changes = [
                f"{name} {before[name][index]!r} → {after[name][index]!r}"
                for name in names or list(before)
                if not _same(before[name][index], after[name][index], tolerance)
            ]
            if changes:
                broken.append(f"{where[index]}: {', '.join(changes)}")
        rows += len(where)
    what = f"{', '.join(names or ['the outputs'])} changed"
    return _verdict(test, broken, rows, what)


def run_directional(test: CompiledTest, session: Session) -> Verdict:
    config = test.config
    output = config["output"]
    broke, holds = _MOVES[config["expect"]]
    broken: list[str] = []
    rows = 0
    for where, before, after in _pairs(test, session):
        for index in range(len(where)):
            old, new = float(before[output][index]), float(after[output][index])
            if not holds(new - old):
                broken.append(f"{where[index]}: {output} {old:g} → {new:g}")
        rows += len(where)
    return _verdict(test, broken, rows, f"{output} {broke}")


def _verdict(test: CompiledTest, broken: list[str], rows: int, what: str) -> Verdict:
    allowed = float(test.config.get("max_failure_rate", 0.0))
    rate = len(broken) / rows if rows else 0.0
    measured: Measured = {"rows": rows, "failed": len(broken), "failure_rate": rate}
    share = f"{len(broken)} of {rows} rows"
    limit = f"at most {allowed:.0%} allowed" if allowed else "none allowed"
    if rate <= allowed:
        summary = f"{share} broke it ({rate:.0%}, {limit})" if broken else f"{rows} rows held"
        return Verdict(True, summary, [], measured)
    return Verdict(False, f"{what} in {share} ({rate:.1%}, {limit})", capped(broken), measured)


def _pairs(
    test: CompiledTest, session: Session
) -> list[tuple[list[str], dict[str, list[Any]], dict[str, list[Any]]]]:
    """For each batch of rows: where they are, and the predictions before and after the change."""
    assert test.table is not None
    table = session.table(test.table)
    runtime = session.runtime()
    found = []
    for first in range(0, len(table.rows), BATCH_ROWS):
        end = min(first + BATCH_ROWS, len(table.rows))
        inputs = inputs_of(runtime, table, first, end)
        changed = perturbed(inputs, test.config["perturb"])
        before = predict(runtime, inputs, table.path)
        after = predict(runtime, changed, f"{table.path} (perturbed)")
        found.append(([table.where(i) for i in range(first, end)], before, after))
    return found


def perturbed(inputs: Arrays, changes: dict[str, dict[str, Any]]) -> Arrays:
    """``inputs`` with each named input changed by ``add``, ``multiply`` or ``set`` (the
    pre-flight checks made sure each fits the input's datatype)."""
    result = dict(inputs)
    for name, change in changes.items():
        array = inputs[name]
        if change.get("set") is not None:
            result[name] = np.full_like(array, change["set"])
        elif change.get("add") is not None:
            result[name] = (array + change["add"]).astype(array.dtype)
        else:
            result[name] = (array * change["multiply"]).astype(array.dtype)
    return result


def _same(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=0.0, abs_tol=tolerance) if tolerance else a == b
    return bool(a == b)
