"""Runs as the store sees them: recording a run around the executor, and reproducing one.

This is where the engine (``mlbuild.exec``) meets the run store (``mlbuild.store``); the CLI calls
these functions, the store knows nothing of graphs and the executor nothing of the store.

The names load on first use (PEP 562), so a command that records no run imports none of this.
``reproduce()`` is not among them: it shares its name with its module, which wins once imported,
so import it as ``from mlbuild.runs.reproduce import reproduce``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.runs.artifacts import get_artifact as get_artifact
    from mlbuild.runs.gc import GcOutcome as GcOutcome
    from mlbuild.runs.gc import collect_garbage as collect_garbage
    from mlbuild.runs.provenance import git_info as git_info
    from mlbuild.runs.record import HEARTBEAT as HEARTBEAT
    from mlbuild.runs.record import RecordedRun as RecordedRun
    from mlbuild.runs.record import finished_record as finished_record
    from mlbuild.runs.record import new_record as new_record
    from mlbuild.runs.record import recorded_run as recorded_run
    from mlbuild.runs.reproduce import Comparison as Comparison
    from mlbuild.runs.reproduce import Reproduction as Reproduction
    from mlbuild.runs.reproduce import Skipped as Skipped
    from mlbuild.runs.reproduce import compare_outputs as compare_outputs

_NAMES = {
    "get_artifact": "artifacts",
    "GcOutcome": "gc",
    "collect_garbage": "gc",
    "git_info": "provenance",
    "HEARTBEAT": "record",
    "RecordedRun": "record",
    "finished_record": "record",
    "new_record": "record",
    "recorded_run": "record",
    "Comparison": "reproduce",
    "Reproduction": "reproduce",
    "Skipped": "reproduce",
    "compare_outputs": "reproduce",
}
__getattr__ = lazy_getattr(__name__, _NAMES)
__all__ = [
    "HEARTBEAT",
    "Comparison",
    "GcOutcome",
    "RecordedRun",
    "Reproduction",
    "Skipped",
    "collect_garbage",
    "compare_outputs",
    "finished_record",
    "get_artifact",
    "git_info",
    "new_record",
    "recorded_run",
]
