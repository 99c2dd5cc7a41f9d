"""The run journal: how ``mlbuild run`` records a run in the default local store without paying
for SQLAlchemy (~0.35 s of imports, more than a whole no-op run).

``run`` writes each run as a JSON file under ``.mlbuild/runs/journal/`` with the standard
library only — at its start, on every heartbeat (the file's mtime) and at its end. Every command
that reads the store (``runs …``, ``model …``) first moves journal entries into it through the
normal :class:`RunStore` contract. A team store (``MLBUILD_STORE`` or ``store.url``) is written
directly: CI jobs must publish their runs before they end.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.store.base import RunStore
from mlbuild.store.liveness import is_gone
from mlbuild.store.records import Artifact, GitInfo, RunRecord, RunStatus, StepEntry

JOURNAL_DIR = "runs/journal"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


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
        # may lose the last state of a run, which the store then reports as interrupted. Not
        # through a symlink or file a step may have put at .mlbuild, runs or runs/journal.
        atomic.own_folder(self.folder, below=_meta(self.folder))
        atomic.write_json(self.folder / f"{run.id}.json", run.to_json(), sync=False)


def ingest(folder: Path, store: RunStore, warn: Callable[[str], None]) -> int:
    """Move the journal's runs into ``store``; the number of runs that ended and were moved.

    Safe to run from any number of processes at once (every ``runs`` command does): each file
    goes in through :meth:`RunStore.put_run`, which is idempotent, and only then is removed, so a
    run is never lost nor recorded twice, and a reader that finds a file gone just moves on.
    A run still going stays in the journal (its latest state is copied, and its heartbeat the
    file's mtime); one whose process died leaves it once copied, and the store marks it
    interrupted. A file that is not a run record is moved to ``corrupt/`` and reported through
    ``warn`` once, by the reader that moved it.
    """
    moved = 0
    atomic.own_folder(folder, below=_meta(folder))  # its files are read, moved and removed
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:  # not through a symlink, nor waiting on a FIFO planted as a run
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with open(fd, encoding="utf-8") as handle:
                seen = os.fstat(fd)  # the file read, not whatever replaces it
                if not stat.S_ISREG(seen.st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                text = handle.read()
        except FileNotFoundError:
            continue  # another reader moved it in
        except (OSError, ValueError) as exc:
            _set_aside(path, f"cannot read it: {exc}", warn)
            continue
        try:
            run = _parse(text, path.stem)
        except ValueError as exc:
            _set_aside(path, str(exc), warn)
            continue
        if run.status is RunStatus.RUNNING:
            store.put_run(replace(run, heartbeat=seen.st_mtime))
            if is_gone(run.process):  # died without a word: the store will mark it interrupted
                _remove_if_same(path, seen)
            continue
        store.put_run(run)
        path.unlink(missing_ok=True)
        moved += 1
    return moved


def _meta(folder: Path) -> Path:
    """The ``.mlbuild`` folder that holds the journal ``folder``."""
    return folder.parents[len(Path(JOURNAL_DIR).parts) - 1]


def _remove_if_same(path: Path, seen: os.stat_result) -> None:
    """Remove ``path`` unless it was replaced since it was read as ``seen``: a run that ended
    just before its process went writes its final record last, and that one must be moved in.
    Once the process is gone nothing replaces the file any more, so checking then removing
    cannot race with its writer."""
    try:
        if os.stat(path).st_ino == seen.st_ino:
            path.unlink()
    except FileNotFoundError:
        pass


def _parse(text: str, stem: str) -> RunRecord:
    """The run record in a journal file named ``stem``.json; ValueError saying what is wrong."""
    try:
        raw = json.loads(text)
        run = record_from_json(raw)
    except ValueError as exc:
        raise ValueError(f"not a run record: {exc}") from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a run record: {type(exc).__name__}: {exc}") from None
    if not isinstance(run.id, str) or run.id != stem or not _RUN_ID.fullmatch(run.id):
        raise ValueError(f"its run id {run.id!r} does not match its name")
    for record in (run, run.git, *run.steps, *run.artifacts):
        for name, expected in _TYPES[type(record).__name__].items():
            value = getattr(record, name)
            if not isinstance(value, expected) or isinstance(value, bool) is not (bool in expected):
                raise ValueError(f"{name} has the wrong type ({type(value).__name__})")
    return run


# what each field of a journal record must be; the store's columns would take (or choke on) any
_NUMBER = (float, int)
_TEXT_OR_NONE = (str, type(None))
_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "NoneType": {},
    "RunRecord": {
        **dict.fromkeys(["kind", "recipe_name", "user", "host", "python", "process"], (str,)),
        "notes": (str,),
        "recipe_hash": _TEXT_OR_NONE,
        "lock_hash": _TEXT_OR_NONE,
        "pid": (int,),
        "started": _NUMBER,
        "ended": (*_NUMBER, type(None)),
        "heartbeat": (*_NUMBER, type(None)),
        "overrides": (list,),
        **dict.fromkeys(["params", "metrics", "data_versions", "tags"], (dict,)),
    },
    "GitInfo": {
        "commit": (str,),
        "branch": _TEXT_OR_NONE,
        "dirty": (bool,),
        "diff_hash": _TEXT_OR_NONE,
    },
    "StepEntry": {
        "name": (str,),
        "status": (str,),
        "fingerprint": _TEXT_OR_NONE,
        "duration": _NUMBER,
        "cache_hit": (bool,),
    },
    "Artifact": {
        "path": (str,),
        "digest": (str,),
        "size": (int,),
        "step": (str,),
        "cached": (bool,),
    },
}


def _set_aside(path: Path, reason: str, warn: Callable[[str], None]) -> None:
    aside = path.parent / "corrupt" / path.name
    try:
        aside.parent.mkdir(exist_ok=True)
        os.rename(path, aside)  # atomic: of all the readers seeing this file, one moves it
    except FileNotFoundError:
        return  # another reader set it aside (and said so), or it was replaced by a good one
    warn(
        f"the run journal file {_shown(path)} is corrupt ({reason}); it was moved to "
        f"{_shown(aside)} and left out of the run store"
    )


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


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
