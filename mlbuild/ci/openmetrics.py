"""A run's metrics as OpenMetrics text, the format of GitLab's ``artifacts:reports:metrics``.

GitLab shows each metric of the merge request's pipeline beside the target branch's. Metric
names are flattened keys (``eval.accuracy``) made valid (``eval_accuracy``); only numbers are
written (booleans as 0 or 1); the run's id is a label, so a value can be traced to its run.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mlbuild.errors import UsageError
from mlbuild.store import RunQuery, RunStore


def openmetrics_of_last_run(store: RunStore) -> str:
    """The metrics of the store's last finished run; a UsageError when there is none."""
    runs = store.list_runs(RunQuery(statuses=["finished"], limit=1))
    if not runs:
        raise UsageError("no finished run is recorded here yet; run `mlbuild run` first")
    return openmetrics(runs[0].metrics, runs[0].id)


def openmetrics(metrics: dict[str, Any], run_id: str) -> str:
    lines = []
    for key in sorted(metrics):
        value = metrics[key]
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            continue
        lines.append(f'{metric_name(key)}{{run="{run_id[:8]}"}} {value}')
    return "\n".join(lines) + ("\n" if lines else "") + "# EOF\n"


def metric_name(key: str) -> str:
    """``eval.accuracy`` → ``eval_accuracy``: OpenMetrics names are ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    name = re.sub(r"[^A-Za-z0-9_:]", "_", key)
    return name if re.match(r"[A-Za-z_:]", name) else f"_{name}"
