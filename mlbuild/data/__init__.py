"""Data versions with DVC: DVC-tracked and imported datasets as first-class step inputs.

Only ``dvc_adapter`` imports dvc, and only when a workspace copy must be verified or fetched.
"""

from __future__ import annotations

from mlbuild.data.dvc_adapter import DvcRemote, dvc_remote
from mlbuild.data.sources import DataSources
from mlbuild.data.status import DatasetStatus, compare, last_run, record_run
from mlbuild.data.version import DataError, DatasetSpec, DataVersion, dvc_repo_root, resolve_kind

__all__ = [
    "DataError",
    "DataSources",
    "DataVersion",
    "DatasetSpec",
    "DatasetStatus",
    "DvcRemote",
    "compare",
    "dvc_remote",
    "dvc_repo_root",
    "last_run",
    "record_run",
    "resolve_kind",
]
