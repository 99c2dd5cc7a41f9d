"""The last completed run of each step in this workspace: what the "why" of a plan compares to."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlbuild import atomic


@dataclass(frozen=True)
class StepRecord:
    step: str
    fingerprint: str
    components: dict[str, Any]
    finished: float
    duration: float
    how: str  # "ran", "restored"


class StepRecords:
    """One JSON file per step under ``.mlbuild/steps/``, replaced atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, step: str) -> StepRecord | None:
        try:
            # not through a symlink, nor waiting on a FIFO planted as a record
            raw = json.loads(atomic.read_own(self.root / f"{step}.json"))
            return StepRecord(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, record: StepRecord, manifests: dict[str, dict[str, str]] | None = None) -> None:
        """Record a step's run; ``manifests`` (directory dep → {file: hash}) are kept beside it,
        read only to explain which files of a directory changed."""
        self._write(f"{record.step}.json", asdict(record))
        if manifests is not None:
            self._write(f"{record.step}.deps.json", manifests)

    def manifests(self, step: str) -> dict[str, dict[str, str]]:
        try:
            loaded: dict[str, dict[str, str]] = json.loads(
                atomic.read_own(self.root / f"{step}.deps.json")
            )
            return loaded
        except (OSError, ValueError):
            return {}

    def names(self) -> list[str]:
        """Steps with a record."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if not p.stem.endswith(".deps"))

    def _write(self, name: str, data: object) -> None:
        # not flushed: a record lost in a crash only makes the next plan explain less; not
        # through a symlink or file a step may have put at .mlbuild or .mlbuild/steps
        atomic.own_folder(self.root, below=self.root.parent)
        atomic.write_json(self.root / name, data, sort_keys=True, sync=False)
