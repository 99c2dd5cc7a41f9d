"""Which executor a step runs on, and what of it enters the step's fingerprint.

Its own module so that ``plan``, which fingerprints every step but runs none, does not load the
step runner and the scheduler (with the run store and process handling behind them) for it.
"""

from __future__ import annotations

from mlbuild.exec.executor import Executors
from mlbuild.graph import COMMAND, IdentityHook, StepSpec


def executor_of(spec: StepSpec, override: str | None) -> str:
    """The executor ``spec`` runs on: ``run --executor NAME`` for a command step, else its own."""
    return override if override is not None and spec.kind == COMMAND else spec.executor


def identity_hook(executors: Executors, override: str | None) -> IdentityHook:
    """What of its executor enters each step's fingerprint, for the planner (run and plan)."""
    return lambda spec: executors.identity(executor_of(spec, override))
