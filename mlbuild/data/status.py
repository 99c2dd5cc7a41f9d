"""``mlbuild data status``: which datasets differ from the last run, and which files changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.data.version import DataVersion, dvc_repo_root

_LAST_RUN = "last-run.json"


@dataclass(frozen=True)
class DatasetStatus:
    name: str
    path: str
    kind: str
    version: str
    last_run: str | None
    state: str  # unchanged | changed | new | absent
    changed_files: list[str] | None  # for a DVC directory whose manifests are in the cache

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def record_run(meta: Path, versions: list[DataVersion]) -> None:
    """Remember the versions a successful run used, for the next ``data status``."""
    atomic.write_json(meta / "data" / _LAST_RUN, [v.to_json() for v in versions], sync=False)


def last_run(meta: Path) -> dict[str, DataVersion]:
    try:
        raw = json.loads(atomic.read_own(meta / "data" / _LAST_RUN))
        return {item["name"]: DataVersion(**item) for item in raw}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def compare(root: Path, current: DataVersion, previous: DataVersion | None) -> DatasetStatus:
    """How dataset ``current`` stands against the version the last run used."""
    version = _label(current)
    if previous is None:
        state, files = "new", None
    elif _label(previous) == version:
        state, files = "unchanged", None
    else:
        state = "changed"
        files = _dir_changes(root, previous.hash, current.hash) if current.kind == "dvc" else None
    if not current.present and state == "unchanged":
        state = "absent"
    return DatasetStatus(
        current.name,
        current.path,
        current.kind,
        version,
        _label(previous) if previous else None,
        state,
        files,
    )


def _label(version: DataVersion) -> str:
    return f"{version.commit}:{version.hash}" if version.commit else version.hash


def _dir_changes(root: Path, old: str, new: str) -> list[str] | None:
    """Files added, removed or modified between two DVC ``.dir`` manifests in the DVC cache."""
    if not (old.endswith(".dir") and new.endswith(".dir")):
        return None
    before, after = _manifest(root, old), _manifest(root, new)
    if before is None or after is None:
        return None
    changes = [f"+ {p}" for p in sorted(after.keys() - before.keys())]
    changes += [f"- {p}" for p in sorted(before.keys() - after.keys())]
    changes += [f"~ {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return changes


def _manifest(root: Path, digest: str) -> dict[str, str] | None:
    repo = dvc_repo_root(root)
    if repo is None:
        return None
    path = repo / ".dvc" / "cache" / "files" / "md5" / digest[:2] / digest[2:]
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {str(e["relpath"]): str(e["md5"]) for e in entries}
