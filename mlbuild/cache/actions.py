"""The action cache: step fingerprint → the outputs (and metrics) that running it produced.

An entry is written last, atomically, after every output is stored as an object, so a step killed
at any moment leaves no entry that counts as done. An entry read back is checked against its
schema before anything is built from it — types, digests, output paths that stay inside the
workspace — and a bad one is a miss, moved to quarantine, never a crash or a wrong restore.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.cache.names import check_digest, is_digest, is_safe_relpath
from mlbuild.cache.quarantine import move_aside
from mlbuild.cache.recent import RecentEntries

_MAX_ENTRY = 64 << 20  # no real entry comes near this; a bigger file is not ours
TOUCH_EVERY_NS = 3600 * 10**9  # an entry's "last used" is kept to the hour (gc counts days)


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
    # what the step's kind reported beyond its files (a test's verdict, a model check's
    # predictions); written only when there is some, so a command step's entry is as before
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        raw = asdict(self)
        if not self.data:
            del raw["data"]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ActionResult:
        """The entry ``text`` holds; :class:`ValueError` saying what is wrong with a bad one."""
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not JSON ({exc})") from None
        # exact types (json.loads makes no subclass; a bool is no number here): cheaper than
        # isinstance on a no-op run, which reads one entry per step
        if type(raw) is not dict or (raw.keys() != _FIELDS and raw.keys() != _WITH_DATA):
            raise ValueError(
                f"expected an object with exactly the keys {sorted(_FIELDS)} (and maybe 'data')"
            )
        data = raw.get("data", {})
        if type(data) is not dict:
            raise ValueError("data: expected an object")
        step = raw["step"]
        if type(step) is not str or not step:
            raise ValueError("step: expected a step name")
        if type(raw["metrics"]) is not dict:
            raise ValueError("metrics: expected an object")
        duration, created = _number(raw["duration"]), _number(raw["created"])
        if duration is None:
            raise ValueError("duration: expected a number")
        if created is None:
            raise ValueError("created: expected a number")
        outs = raw["outs"]
        if type(outs) is not dict:
            raise ValueError("outs: expected an object")
        return cls(
            step,
            {path: _out(path, record) for path, record in outs.items()},
            raw["metrics"],
            duration,
            created,
            data,
        )


_FIELDS = {"step", "outs", "metrics", "duration", "created"}
_WITH_DATA = _FIELDS | {"data"}
_OUT_FIELDS = {"digest", "size", "cached"}


def _number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` if it is none: not a number, a bool, NaN, an
    infinity, or an integer past a float's range (``float()`` of a 400-digit one overflows)."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return None
    return None


def _out(path: str, record: object) -> OutRecord:
    if not is_safe_relpath(path):
        raise ValueError(f"outs: {path[:80]!r} is not a relative path inside the workspace")
    if type(record) is not dict or record.keys() != _OUT_FIELDS:
        raise ValueError(f"outs.{path}: expected digest, size and cached")
    digest, size, cached = record["digest"], record["size"], record["cached"]
    if not is_digest(digest):
        raise ValueError(f"outs.{path}.digest: malformed digest {str(digest)[:80]!r}")
    if type(size) is not int or size < 0:
        raise ValueError(f"outs.{path}.size: expected a byte count")
    if type(cached) is not bool:
        raise ValueError(f"outs.{path}.cached: expected true or false")
    return OutRecord(digest, size, cached)


class ActionCache:
    """Entries under ``root/<first two hex digits>/<fingerprint>.json``; bad ones are moved to
    ``quarantine``."""

    def __init__(self, root: Path, recent: RecentEntries | None = None) -> None:
        self.root = root
        self.quarantine = root.parent / "quarantine"
        self.recent = recent  # the workspace's entries read in one batch (mlbuild.cache.recent)
        self._used: dict[str, int] = {}  # entry file → its mtime (ns) when looked up

    def path_of(self, fingerprint: str) -> Path:
        return Path(self._file(fingerprint))

    def _file(self, fingerprint: str) -> str:
        check_digest(fingerprint)
        # a str: a no-op run looks up one entry per step, and Path arithmetic was a fifth of it
        return f"{self.root}/{fingerprint[:2]}/{fingerprint}.json"

    def get(self, fingerprint: str) -> ActionResult | None:
        """The entry for ``fingerprint``; ``None`` when there is none or it was bad (and is now
        in quarantine): the step re-runs and writes a good one. None read through a shard planted
        as a symlink (maybe to another cache's): nor moved from there to quarantine."""
        path = self._file(fingerprint)
        if atomic.planted(Path(path).parent):
            return None
        loaded = self._read(path)
        if loaded is None or isinstance(loaded, ActionResult):
            return loaded
        self.discard(fingerprint)
        return None

    def put(self, fingerprint: str, result: ActionResult) -> None:
        path = self.path_of(fingerprint)
        # not through a symlink or file a step put at the cache, its actions or the shard
        atomic.own_folder(path.parent, below=self.root.parent)
        atomic.write_text(path, result.to_json())

    def _read(self, path: str) -> ActionResult | str | None:
        if self.recent is None:
            return _load(path, self._used)
        found = self.recent.lookup(path)
        if found is None:
            return None
        st, text = found
        if text is None:
            return _load(path, self._used, self.recent)
        self._used[path] = st.st_mtime_ns
        try:
            return ActionResult.from_json(text)
        except ValueError as exc:  # the file holds the same text: it is as bad
            return str(exc)

    def touch(self, fingerprint: str) -> None:
        """Mark an entry used now, so ``gc --keep-days`` keeps what is in use. An entry looked
        up in this command and marked less than :data:`TOUCH_EVERY` ago is left as it is: a
        touch changes the file's ctime, which makes the workspace's batch of entries read it
        again (and ``gc`` counts in days)."""
        path = self._file(fingerprint)
        now = time.time_ns()
        used = self._used.get(path)
        if used is not None and 0 <= now - used < TOUCH_EVERY_NS:
            return
        # best effort: an entry gone, or another user's in a shared cache, only ages sooner
        with contextlib.suppress(OSError):
            os.utime(path, ns=(now, now), follow_symlinks=False)

    def entries(self) -> list[tuple[str, float, ActionResult | None]]:
        """Every entry as (fingerprint, last used, result or None if it is bad)."""
        found = []
        # not through a shard planted as a symlink (maybe to another cache's): gc would remove
        # what is there
        shards = [s for s in _listing(self.root) if not atomic.planted(s)]
        for path in (p for shard in shards for p in shard.glob("*.json")):
            try:
                used = path.lstat().st_mtime
            except FileNotFoundError:
                continue
            if not is_digest(path.stem, file_only=True):
                continue  # not an entry mlbuild wrote; gc leaves what it does not know
            loaded = _load(path)
            if loaded is None:
                continue  # removed since the listing
            found.append((path.stem, used, loaded if isinstance(loaded, ActionResult) else None))
        return found

    def remove(self, fingerprint: str) -> None:
        self.path_of(fingerprint).unlink(missing_ok=True)

    def discard(self, fingerprint: str) -> None:
        """Move a bad entry to quarantine."""
        move_aside(self.path_of(fingerprint), self.quarantine, f"action-{fingerprint}")


def _load(
    path: Path | str, used: dict[str, int] | None = None, recent: RecentEntries | None = None
) -> ActionResult | str | None:
    """The entry at ``path``, what is wrong with it, or ``None`` if there is none; its mtime
    noted in ``used``, and its text given to ``recent`` when it is good."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_ENTRY:
        os.close(fd)
        return "not a regular file of a sane size"
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        result = ActionResult.from_json(data)
    except ValueError as exc:
        return str(exc)
    if used is not None:
        used[str(path)] = info.st_mtime_ns
    if recent is not None:
        with contextlib.suppress(UnicodeDecodeError):  # JSON in UTF-16 is read, not kept
            recent.remember(str(path), info, data.decode("utf-8"))
    return result


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # missing, or not a folder
        return []
