"""``mlbuild diff``: what a change to a model repository does, for the people who review it.

Two sides (git revisions, recipe files or the working tree) are resolved as ``mlbuild run``
would resolve them and compared semantically — steps, params leaf by leaf, data versions, the
environment lock, the model, the test gates, searches and package settings, and any other
section — with the consequence: which steps a run at
the second side takes from the cache and which it runs, and why.
"""

from __future__ import annotations

from mlbuild.review.compare import DataChange, Report, StepDiff, compare
from mlbuild.review.diff import diff_report
from mlbuild.review.revisions import Side
from mlbuild.review.sections import Change, EntryDiff

__all__ = [
    "Change",
    "DataChange",
    "EntryDiff",
    "Report",
    "Side",
    "StepDiff",
    "compare",
    "diff_report",
]
