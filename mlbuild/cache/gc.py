"""Garbage collection: drop unused action entries, then every object no kept entry references."""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlbuild.cache.hashing import DIR_SUFFIX
from mlbuild.cache.objects import remove
from mlbuild.cache.store import Cache


@dataclass(frozen=True)
class GcReport:
    actions_removed: int
    objects_removed: int
    bytes_freed: int
    actions_kept: int
    objects_kept: int


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

    ``keep`` holds the fingerprints the current workspace's outputs come from; ``keep_objects``
    digests kept whatever uses them (registered model versions' artifacts).
    """
    now = time.time()
    live: set[str] = set()
    for digest in keep_objects or ():
        live.add(digest)
        if digest.endswith(DIR_SUFFIX) and cache.objects.has(digest):
            live.update(e.digest for e in cache.objects.read_manifest(digest))
    kept = removed = 0
    for fingerprint, used, result in cache.actions.entries():
        recent = keep_days is not None and now - used < keep_days * 86400
        if result is not None and (fingerprint in keep or recent):
            kept += 1
            for out in result.outs.values():
                live.add(out.digest)
                if out.digest.endswith(DIR_SUFFIX) and cache.objects.has(out.digest):
                    live.update(e.digest for e in cache.objects.read_manifest(out.digest))
            continue
        removed += 1
        if not dry_run:
            cache.actions.remove(fingerprint)
    objects_removed = freed = objects_kept = 0
    if cache.objects.root.exists():
        for shard in cache.objects.root.iterdir():
            for obj in shard.iterdir():
                if shard.name + obj.name in live:
                    objects_kept += 1
                    continue
                objects_removed += 1
                freed += obj.stat().st_size
                if not dry_run:
                    obj.unlink()
    if not dry_run and cache.objects.tmp.exists():
        for leftover in cache.objects.tmp.iterdir():
            if now - leftover.stat().st_mtime > 3600:  # a writer may still own a fresh one
                remove(leftover)
    return GcReport(removed, objects_removed, freed, kept, objects_kept)
