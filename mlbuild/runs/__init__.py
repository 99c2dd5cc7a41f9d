"""Runs as the store sees them: recording a run around the executor, and reproducing one.

This is where the engine (``mlbuild.exec``) meets the run store (``mlbuild.store``); the CLI calls
these functions, the store knows nothing of graphs and the executor nothing of the store.
"""

from __future__ import annotations

from mlbuild.runs.artifacts import get_artifact
from mlbuild.runs.provenance import git_info
from mlbuild.runs.record import HEARTBEAT, RecordedRun, finished_record, new_record, recorded_run
from mlbuild.runs.reproduce import Comparison, Reproduction, Skipped, compare_outputs, reproduce

__all__ = [
    "HEARTBEAT",
    "Comparison",
    "RecordedRun",
    "Reproduction",
    "Skipped",
    "compare_outputs",
    "finished_record",
    "get_artifact",
    "git_info",
    "new_record",
    "recorded_run",
    "reproduce",
]
