"""``kind: slices``: a metric computed for each group of a column (a region, a customer segment,
a protected attribute) must hold in every group; the groups may differ by at most ``max_gap``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from mlbuild.testing.predict import predict_table
from mlbuild.testing.preflight import tensors
from mlbuild.testing.session import Session
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.values import parse_value
from mlbuild.testing.verdict import Measured, Verdict, capped

MAX_MEASURED = 50  # groups recorded on the run as metrics; more are only in the details


def _accuracy(pairs: list[tuple[Any, Any]]) -> float:
    return sum(1 for p, t in pairs if p == t) / len(pairs)


def _mae(pairs: list[tuple[Any, Any]]) -> float:
    return sum(abs(float(p) - float(t)) for p, t in pairs) / len(pairs)


def _rmse(pairs: list[tuple[Any, Any]]) -> float:
    return math.sqrt(sum((float(p) - float(t)) ** 2 for p, t in pairs) / len(pairs))


def _mean(pairs: list[tuple[Any, Any]]) -> float:
    return sum(float(p) for p, _ in pairs) / len(pairs)


METRICS: dict[str, Callable[[list[tuple[Any, Any]]], float]] = {
    "accuracy": _accuracy,
    "mae": _mae,
    "rmse": _rmse,
    "mean": _mean,
}


def run(test: CompiledTest, session: Session) -> Verdict:
    config = test.config
    assert test.table is not None
    table = session.table(test.table)
    outputs = tensors(session.signature(), "outputs")
    output = config.get("output") or next(iter(outputs))
    datatype = outputs[output].datatype
    predicted = predict_table(session.runtime(), table)[output]
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for index, row in enumerate(table.rows):
        key = _group(row.get(config["by"]))
        truth = None
        if config.get("label"):
            truth = parse_value(row[config["label"]], datatype, from_text=table.is_csv)
        groups.setdefault(key, []).append((predicted[index], truth))
    metric = METRICS[config["metric"]]
    low, high, gap = config.get("min"), config.get("max"), config.get("max_gap")
    values: dict[str, float] = {}
    failures: list[str] = []
    lines: list[str] = []
    for key in sorted(groups):
        pairs = groups[key]
        if len(pairs) < config.get("min_rows", 1):
            lines.append(
                f"{config['by']}={key}: {len(pairs)} rows, fewer than min_rows; not judged"
            )
            continue
        value = metric(pairs)
        values[key] = value
        line = f"{config['by']}={key}: {config['metric']} {value:.4g} ({len(pairs)} rows)"
        lines.append(line)
        if low is not None and value < low:
            failures.append(f"{line} is below the minimum {low:g}")
        if high is not None and value > high:
            failures.append(f"{line} is above the maximum {high:g}")
    measured: Measured = {
        f"{config['by']}={k}": v for k, v in list(sorted(values.items()))[:MAX_MEASURED]
    }
    spread = max(values.values()) - min(values.values()) if values else 0.0
    measured["gap"] = spread
    if gap is not None and spread > gap + 1e-12:
        worst = min(values, key=lambda k: values[k])
        best = max(values, key=lambda k: values[k])
        failures.append(
            f"groups differ by {spread:.4g} ({config['by']}={best}: {values[best]:.4g}, "
            f"{config['by']}={worst}: {values[worst]:.4g}), more than max_gap {gap:g}"
        )
    judged = len(values)
    if not judged:
        return Verdict(
            False, f"no group of '{config['by']}' has min_rows rows; nothing was judged", lines
        )
    if failures:
        return Verdict(
            False,
            f"{len(failures)} problem{'s' if len(failures) != 1 else ''} in {judged} groups "
            f"of '{config['by']}'",
            capped(failures) + capped(lines),
            measured,
        )
    worst = min(values, key=lambda k: values[k])
    return Verdict(
        True,
        f"{config['metric']} holds in all {judged} groups of '{config['by']}' (lowest "
        f"{values[worst]:.4g}: {config['by']}={worst})",
        [],
        measured,
    )


def _group(value: Any) -> str:
    """A group's name: the cell's text, or a JSON value written as JSON."""
    if value is None or value == "":
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value)
