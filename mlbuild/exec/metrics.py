"""Read a step's metrics files (JSON or YAML) into flat ``{dotted.key: value}`` mappings, and
merge the steps' metrics into a run's.

A metrics file is recorded everywhere (run records, ``--json``, the action cache) and cached as an
output, so a secret's value in it is masked at the source: the file itself is rewritten with
``***`` in its place before it is stored, and the step is told so.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError
from mlbuild.masking import MASK, Secrets


def read_metrics(
    path: Path, display: str, secrets: Secrets | None = None
) -> tuple[dict[str, Any], str | None]:
    """Scalar values of the metrics file at ``path`` (nested keys joined with dots), and a note
    for the user if a value of one of ``secrets`` was found in it — and masked, in the file too."""
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
    if not secrets:
        return _flatten(data), None
    masked = secrets.data(data)
    if masked == data:
        return _flatten(data), None
    before, after = _flatten(data), _flatten(masked)
    keys = [k for k in after if k not in before or before[k] != after[k]]
    note = (
        f"metrics file {display} held the value of secret {', '.join(secrets.found_in(data))} "
        f"(in {', '.join(repr(k) for k in keys)}); it is replaced by {MASK} in the file and in "
        "everything recorded"
    )
    _rewrite(path, masked, is_yaml)
    return after, note


def _rewrite(path: Path, data: dict[str, Any], is_yaml: bool) -> None:
    """Replace the file's content, atomically: a reader never sees half of it."""
    if is_yaml:
        import yaml

        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(data, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
