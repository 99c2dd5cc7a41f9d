"""The run journal: how ``mlbuild run`` records a run in the default local store without paying
for SQLAlchemy (~0.35 s of imports, more than a whole no-op run).

``run`` writes each run as a JSON file under ``.mlbuild/runs/journal/`` with the standard
library only — at its start, on every heartbeat (the file's mtime) and at its end. Every command
that reads the store (``runs …``, ``model …``) first moves journal entries into it through the
normal :class:`RunStore` contract. A team store (``MLBUILD_STORE`` or ``store.url``) is written
directly: CI jobs must publish their runs before they end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.errors import NotFoundError
from mlbuild.store.base import RunStore
from mlbuild.store.records import Artifact, GitInfo, RunRecord, RunStatus, StepEntry

JOURNAL_DIR = "runs/journal"


class JournalStore:
    """The writing half of :class:`RunStore`, as files: enough for the run recorder."""

    url = "journal"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def start_run(self, run: RunRecord) -> None:
        self._write(run)

    def heartbeat(self, run_id: str) -> None:
        now = time.time()
        os.utime(self.folder / f"{run_id}.json", (now, now))

    def finish_run(self, run: RunRecord) -> None:
        self._write(run)

    def close(self) -> None:
        pass

    def _write(self, run: RunRecord) -> None:
        # not flushed on every write, like the SQLite store (WAL, synchronous=NORMAL): a crash
        # may lose the last state of a run, which the store then reports as interrupted
        atomic.write_json(self.folder / f"{run.id}.json", run.to_json(), sync=False)


def ingest(folder: Path, store: RunStore) -> int:
    """Move the journal's runs into ``store``; the number of runs that ended and were moved.

    A run still going stays in the journal (its latest state is copied, and its heartbeat the
    file's mtime); the store's stale detection applies to it like to any running run.
    """
    moved = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            beat = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # being replaced right now; the next reader takes it
        run = record_from_json(raw)
        try:
            current = store.get_run(run.id)
        except NotFoundError:
            store.start_run(_as_running(run, beat))
            current = None
        if run.status is RunStatus.RUNNING:
            if current is not None and (current.heartbeat or 0) < beat:
                store.heartbeat(run.id)
            continue
        store.finish_run(run)
        path.unlink(missing_ok=True)
        moved += 1
    return moved


def _as_running(run: RunRecord, beat: float) -> RunRecord:
    from dataclasses import replace

    return replace(run, status=RunStatus.RUNNING, ended=None, heartbeat=beat)


def record_from_json(raw: dict[str, Any]) -> RunRecord:
    """The inverse of :meth:`RunRecord.to_json`."""
    fields = {k: v for k, v in raw.items() if k != "duration"}
    git = fields.get("git")
    return RunRecord(
        **{
            **fields,
            "status": RunStatus(fields["status"]),
            "git": GitInfo(**git) if git else None,
            "steps": [StepEntry(**s) for s in fields.get("steps", [])],
            "artifacts": [Artifact(**a) for a in fields.get("artifacts", [])],
        }
    )
