"""Hyperparameter search with Optuna: a search of the recipe (``search:``) runs trials that are
cached, recorded runs of its target step; Optuna's RDB storage lets workers on one machine or many
share a study.

The only package that imports Optuna (lazily: loading the search's spec needs none of it).
"""

from __future__ import annotations

from mlbuild.search.best import write_best
from mlbuild.search.results import PLOTS, StudyReport, TrialRow, study_report, write_plots
from mlbuild.search.runner import WorkerOutcome, prepare_study, run_worker, run_workers
from mlbuild.search.spec import HEARTBEAT_ENV, Objective, SearchSpec, load_search
from mlbuild.search.study import (
    close_connections,
    display_url,
    load_study,
    open_storage,
    storage_url,
    study_names,
)
from mlbuild.search.trial import TrialResult

__all__ = [
    "HEARTBEAT_ENV",
    "PLOTS",
    "Objective",
    "SearchSpec",
    "StudyReport",
    "TrialResult",
    "TrialRow",
    "WorkerOutcome",
    "close_connections",
    "display_url",
    "load_search",
    "load_study",
    "open_storage",
    "prepare_study",
    "run_worker",
    "run_workers",
    "storage_url",
    "study_names",
    "study_report",
    "write_best",
    "write_plots",
]
