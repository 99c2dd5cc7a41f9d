"""Executors: local child processes in parallel (Kubernetes Jobs come later)."""

from __future__ import annotations

from mlbuild.exec.events import Reporter, RunSummary, Status, StepOutcome
from mlbuild.exec.local import graph_secrets, run_steps
from mlbuild.exec.lock import run_lock

__all__ = [
    "Reporter",
    "RunSummary",
    "Status",
    "StepOutcome",
    "graph_secrets",
    "run_lock",
    "run_steps",
]
