"""The action cache: step fingerprint → the outputs (and metrics) that running it produced.

An entry is written last, atomically, after every output is in the object store, so a step killed
at any moment leaves no entry that counts as done.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OutRecord:
    """One output of a finished step."""

    digest: str
    size: int
    cached: bool = True


@dataclass(frozen=True)
class ActionResult:
    """What a step with a given fingerprint produced."""

    step: str
    outs: dict[str, OutRecord]
    metrics: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    created: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ActionResult:
        raw = json.loads(text)
        outs = {path: OutRecord(**rec) for path, rec in raw.pop("outs").items()}
        return cls(outs=outs, **raw)


class ActionCache:
    """Entries under ``root/<first two hex digits>/<fingerprint>.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, fingerprint: str) -> Path:
        return self.root / fingerprint[:2] / f"{fingerprint}.json"

    def get(self, fingerprint: str) -> ActionResult | None:
        try:
            text = self.path_of(fingerprint).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return ActionResult.from_json(text)
        except (ValueError, TypeError, KeyError):
            return None  # a damaged entry is a miss; the step re-runs and rewrites it

    def put(self, fingerprint: str, result: ActionResult) -> None:
        target = self.path_of(fingerprint)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(result.to_json())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise

    def touch(self, fingerprint: str) -> None:
        """Mark an entry used now, so ``gc --keep-days`` keeps what is in use."""
        now = time.time()
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path_of(fingerprint), (now, now))

    def entries(self) -> list[tuple[str, float, ActionResult | None]]:
        """Every entry as (fingerprint, last used, result or None if unreadable)."""
        found = []
        for path in self.root.glob("*/*.json"):
            try:
                used = path.stat().st_mtime
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            try:
                result: ActionResult | None = ActionResult.from_json(text)
            except (ValueError, TypeError, KeyError):
                result = None
            found.append((path.stem, used, result))
        return found

    def remove(self, fingerprint: str) -> None:
        self.path_of(fingerprint).unlink(missing_ok=True)
