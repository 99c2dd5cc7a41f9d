"""The last completed run of each step in this workspace: what the "why" of a plan compares to."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


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
            raw = json.loads((self.root / f"{step}.json").read_text(encoding="utf-8"))
            return StepRecord(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, record: StepRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(record), handle, sort_keys=True)
        os.replace(tmp, self.root / f"{record.step}.json")
