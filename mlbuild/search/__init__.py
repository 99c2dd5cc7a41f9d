"""Hyperparameter search with Optuna: a search of the recipe (``search:``) runs trials that are
cached, recorded runs of its target step; Optuna's RDB storage lets workers on one machine or many
share a study.

The only package that imports Optuna (lazily: loading the search's spec needs none of it). Its
names are loaded on first use (PEP 562): ``search show`` needs neither the runner nor the run
store, and compiling a recipe with a search (``mlbuild.search.compile``) needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.search.best import write_best as write_best
    from mlbuild.search.results import PLOTS as PLOTS
    from mlbuild.search.results import StudyReport as StudyReport
    from mlbuild.search.results import TrialRow as TrialRow
    from mlbuild.search.results import study_report as study_report
    from mlbuild.search.results import write_plots as write_plots
    from mlbuild.search.runner import WorkerOutcome as WorkerOutcome
    from mlbuild.search.runner import prepare_study as prepare_study
    from mlbuild.search.runner import run_worker as run_worker
    from mlbuild.search.runner import run_workers as run_workers
    from mlbuild.search.spec import HEARTBEAT_ENV as HEARTBEAT_ENV
    from mlbuild.search.spec import Objective as Objective
    from mlbuild.search.spec import SearchSpec as SearchSpec
    from mlbuild.search.spec import load_search as load_search
    from mlbuild.search.study import close_connections as close_connections
    from mlbuild.search.study import display_url as display_url
    from mlbuild.search.study import load_study as load_study
    from mlbuild.search.study import open_storage as open_storage
    from mlbuild.search.study import storage_url as storage_url
    from mlbuild.search.study import study_names as study_names
    from mlbuild.search.trial import TrialResult as TrialResult

_NAMES = {
    "write_best": "best",
    "PLOTS": "results",
    "StudyReport": "results",
    "TrialRow": "results",
    "study_report": "results",
    "write_plots": "results",
    "WorkerOutcome": "runner",
    "prepare_study": "runner",
    "run_worker": "runner",
    "run_workers": "runner",
    "HEARTBEAT_ENV": "spec",
    "Objective": "spec",
    "SearchSpec": "spec",
    "load_search": "spec",
    "close_connections": "study",
    "display_url": "study",
    "load_study": "study",
    "open_storage": "study",
    "storage_url": "study",
    "study_names": "study",
    "TrialResult": "trial",
}
__getattr__ = lazy_getattr(__name__, _NAMES)
__all__ = [  # noqa: RUF022 - in the order of _NAMES
    "write_best",
    "PLOTS",
    "StudyReport",
    "TrialRow",
    "study_report",
    "write_plots",
    "WorkerOutcome",
    "prepare_study",
    "run_worker",
    "run_workers",
    "HEARTBEAT_ENV",
    "Objective",
    "SearchSpec",
    "load_search",
    "close_connections",
    "display_url",
    "load_study",
    "open_storage",
    "storage_url",
    "study_names",
    "TrialResult",
]
