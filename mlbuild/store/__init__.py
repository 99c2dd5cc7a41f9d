"""The run store: every run recorded, searchable and comparable; model versions and aliases.

SQLite under ``.mlbuild/runs.db`` by default; a PostgreSQL URL in ``MLBUILD_STORE`` (or the
recipe's ``store.url``) for a store a team's machines and CI jobs share. The contract is
:class:`RunStore` (``base.py``). SQLAlchemy is imported only when a store is opened, so importing
this package for its records costs nothing; its names load on first use (PEP 562), so code that
needs one of them (``process_token``) does not load the rest.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.store.base import RunStore as RunStore
    from mlbuild.store.base import RunWriter as RunWriter
    from mlbuild.store.journal import JournalStore as JournalStore
    from mlbuild.store.liveness import process_token as process_token
    from mlbuild.store.query import Condition as Condition
    from mlbuild.store.query import RunQuery as RunQuery
    from mlbuild.store.query import parse_condition as parse_condition
    from mlbuild.store.query import parse_sort as parse_sort
    from mlbuild.store.query import parse_tag_condition as parse_tag_condition
    from mlbuild.store.records import AliasChange as AliasChange
    from mlbuild.store.records import Artifact as Artifact
    from mlbuild.store.records import GitInfo as GitInfo
    from mlbuild.store.records import ModelVersion as ModelVersion
    from mlbuild.store.records import RunRecord as RunRecord
    from mlbuild.store.records import RunStatus as RunStatus
    from mlbuild.store.records import StepEntry as StepEntry

STORE_ENV = "MLBUILD_STORE"
STORE_FILE = "runs.db"

_NAMES = {
    "RunStore": "base",
    "RunWriter": "base",
    "JournalStore": "journal",
    "process_token": "liveness",
    "Condition": "query",
    "RunQuery": "query",
    "parse_condition": "query",
    "parse_sort": "query",
    "parse_tag_condition": "query",
    "AliasChange": "records",
    "Artifact": "records",
    "GitInfo": "records",
    "ModelVersion": "records",
    "RunRecord": "records",
    "RunStatus": "records",
    "StepEntry": "records",
}
__getattr__ = lazy_getattr(__name__, _NAMES)

__all__ = [
    "STORE_ENV",
    "STORE_FILE",
    "AliasChange",
    "Artifact",
    "Condition",
    "GitInfo",
    "JournalStore",
    "ModelVersion",
    "RunQuery",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunWriter",
    "StepEntry",
    "open_store",
    "open_workspace_store",
    "parse_condition",
    "parse_sort",
    "parse_tag_condition",
    "process_token",
    "recorder_store",
    "refuse_planted_store",
    "store_url",
]


def store_url(meta: Path, configured: str | None = None) -> str:
    """Where the runs of the workspace whose ``.mlbuild`` is ``meta`` are stored:
    ``MLBUILD_STORE``, else the recipe's ``store.url``, else ``.mlbuild/runs.db``.
    A plain path (no ``scheme://``) names a SQLite file."""
    url = os.environ.get(STORE_ENV) or configured
    if not url:
        return f"sqlite:///{meta / STORE_FILE}"
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().absolute()}"
    return url


def open_store(url: str) -> RunStore:
    """Open (and if needed create or migrate) the store at ``url``."""
    from mlbuild.store.sql import SqlRunStore

    return SqlRunStore(url)


def open_workspace_store(
    meta: Path, configured: str | None = None, *, warn: Callable[[str], None] | None = None
) -> RunStore:
    """The store of the workspace whose ``.mlbuild`` is ``meta``, with the runs ``mlbuild run``
    journaled for it moved in (see ``journal.py``); ``warn`` (default: a line on stderr) hears
    about a corrupt journal file."""
    from mlbuild.store.journal import JOURNAL_DIR, ingest

    url = store_url(meta, configured)
    default = url == store_url(meta) and not os.environ.get(STORE_ENV)
    if default:
        refuse_planted_store(meta / STORE_FILE)
    store = open_store(url)
    if default:
        ingest(meta / JOURNAL_DIR, store, warn or _warn)
    return store


def refuse_planted_store(path: Path) -> None:
    """SQLite follows a symlink and writes a file in place: a symlink (maybe out of the
    workspace), a FIFO or a hardlink to a user's file planted as ``.mlbuild/runs.db`` would take
    the workspace's runs, and its runs be listed as this workspace's."""
    from mlbuild import atomic

    for name in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-journal")):
        if atomic.planted_file(name):
            raise atomic.planted_error(name)


def _warn(message: str) -> None:
    print(f"mlbuild: warning: {message}", file=sys.stderr)


def recorder_store(meta: Path, configured: str | None = None) -> RunWriter:
    """Where ``mlbuild run`` records: the journal for the default local store (no SQLAlchemy on
    the run's path), the store itself for a team store named by URL."""
    from mlbuild.store.journal import JOURNAL_DIR, JournalStore

    if os.environ.get(STORE_ENV) or configured:
        return open_store(store_url(meta, configured))
    return JournalStore(meta / JOURNAL_DIR)
