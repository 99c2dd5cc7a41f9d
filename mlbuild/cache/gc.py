"""Garbage collection: drop unused action entries, then every object no kept entry references.

The caller holds the cache lock alone (:meth:`Cache.collecting`) and says what to keep; see
``mlbuild/runs/gc.py`` for how a workspace decides that for every workspace sharing the cache.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from mlbuild.cache import quarantine
from mlbuild.cache.location import Cache
from mlbuild.cache.names import DIR_SUFFIX, is_digest
from mlbuild.cache.objects import CorruptObjectError, MissingObjectError, remove

_STALE_TMP = 3600  # seconds: a temporary file this old belongs to a process that died


@dataclass(frozen=True)
class GcReport:
    actions_removed: int
    objects_removed: int
    bytes_freed: int
    actions_kept: int
    objects_kept: int
    quarantined: int = 0


def collect(
    cache: Cache,
    *,
    keep: set[str],
    keep_days: float | None,
    dry_run: bool = False,
    keep_objects: set[str] | None = None,
) -> GcReport:
    """Remove action entries not in ``keep`` and unused for ``keep_days`` (all such, if ``None``),
    then objects referenced by no remaining entry, and leftover temporary files.

    ``keep`` holds the fingerprints workspaces' outputs come from; ``keep_objects`` digests kept
    whatever uses them (registered model versions' artifacts, recent runs' artifacts). Quarantined
    files are counted, never removed.
    """
    now = time.time()
    live: set[str] = set()
    for digest in keep_objects or ():
        if is_digest(digest):
            _mark(cache, digest, live)
    kept = removed = 0
    for fingerprint, used, result in cache.actions.entries():
        recent = keep_days is not None and now - used < keep_days * 86400
        if result is not None and (fingerprint in keep or recent):
            kept += 1
            for out in result.outs.values():
                _mark(cache, out.digest, live)
            continue
        removed += 1
        if not dry_run:
            cache.actions.remove(fingerprint)
    objects_removed = freed = objects_kept = 0
    for shard in _listing(cache.objects.root):
        for obj in _listing(shard):
            try:
                info = obj.lstat()
            except FileNotFoundError:
                continue
            if obj.name.startswith("."):  # a writer's temporary file
                if now - info.st_mtime > _STALE_TMP and not dry_run:
                    remove(obj)
                continue
            if shard.name + obj.name in live:
                objects_kept += 1
                continue
            objects_removed += 1
            freed += info.st_size
            if not dry_run:
                remove(obj)
    if not dry_run:
        for leftover in _listing(cache.objects.tmp):  # where older versions staged objects
            if now - leftover.lstat().st_mtime > _STALE_TMP:
                remove(leftover)
    held = quarantine.count(cache.objects.quarantine)
    return GcReport(removed, objects_removed, freed, kept, objects_kept, held)


def _mark(cache: Cache, digest: str, live: set[str]) -> None:
    """Keep ``digest`` and, for a directory, every file its manifest lists."""
    live.add(digest)
    if not digest.endswith(DIR_SUFFIX):
        return
    # a missing or bad manifest keeps nothing: the step re-runs when it next needs this output
    with contextlib.suppress(MissingObjectError, CorruptObjectError):
        live.update(e.digest for e in cache.objects.read_manifest(digest))


def _listing(folder: Path) -> list[Path]:
    """The entries of ``folder``; none when it is missing or not a real folder."""
    if folder.is_symlink() or not folder.is_dir():
        return []
    return list(folder.iterdir())
