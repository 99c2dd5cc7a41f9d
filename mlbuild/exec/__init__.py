"""The engine that runs steps: the scheduler, step kinds (how a step does its work) and executors
(where its process runs), with their registries."""

from __future__ import annotations

from mlbuild.exec.events import Reporter, RunSummary, Status, StepOutcome
from mlbuild.exec.executor import EXECUTORS, Executor, Executors, ProcessRequest, ProcessResult
from mlbuild.exec.kinds import (
    KINDS,
    KindResult,
    StepFailure,
    StepKind,
    StepStopped,
    describe,
    external_hook,
)
from mlbuild.exec.lock import run_lock
from mlbuild.exec.scheduler import graph_secrets, identity_hook, run_steps

__all__ = [
    "EXECUTORS",
    "KINDS",
    "Executor",
    "Executors",
    "KindResult",
    "ProcessRequest",
    "ProcessResult",
    "Reporter",
    "RunSummary",
    "Status",
    "StepFailure",
    "StepKind",
    "StepOutcome",
    "StepStopped",
    "describe",
    "external_hook",
    "graph_secrets",
    "identity_hook",
    "run_lock",
    "run_steps",
]
