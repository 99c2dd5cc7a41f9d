"""Read a step's metrics files (JSON or YAML) into flat ``{dotted.key: value}`` mappings, and
merge the steps' metrics into a run's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError


def read_metrics(path: Path, display: str) -> dict[str, Any]:
    """Scalar values of the metrics file at ``path``; nested keys are joined with dots."""
    is_yaml = path.suffix in (".yaml", ".yml")
    try:
        text = path.read_text(encoding="utf-8")
        if is_yaml:
            from mlbuild.recipe import safe_load_yaml  # bounded: a metrics file can be a bomb

            data = safe_load_yaml(text)
        else:
            data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise MlbuildError(
            f"metrics file {display} is not valid {'YAML' if is_yaml else 'JSON'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise MlbuildError(f"metrics file {display} must hold a mapping of names to values")
    return _flatten(data)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, int | float | str | bool) or value is None:
            flat[name] = value
    return flat


STEP_SEPARATOR = "/"  # `train/accuracy`: not `.`, which already joins the keys of nested files


def merge_metrics(per_step: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One run's metrics from each step's: a key that two steps of the run report is kept for
    each, prefixed with the step's name (``train/accuracy``, ``evaluate/accuracy``) rather than
    one overwriting the other; a key only one step reports stays bare."""
    owners: dict[str, int] = {}
    for _, metrics in per_step:
        for key in metrics:
            owners[key] = owners.get(key, 0) + 1
    merged: dict[str, Any] = {}
    for step, metrics in per_step:
        for key, value in metrics.items():
            merged[f"{step}{STEP_SEPARATOR}{key}" if owners[key] > 1 else key] = value
    return merged
