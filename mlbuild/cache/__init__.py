"""Content hashing with a state table, content-addressed objects, the action cache and gc."""

from __future__ import annotations

from mlbuild.cache.actions import ActionCache, ActionResult, OutRecord
from mlbuild.cache.gc import GcReport, collect
from mlbuild.cache.hashing import DIR_SUFFIX, Digest, Hasher, HashStats, ManifestEntry, hash_bytes
from mlbuild.cache.objects import ObjectStore, remove
from mlbuild.cache.state import StateTable
from mlbuild.cache.store import CACHE_DIR_ENV, FORMAT_VERSION, Cache

__all__ = [
    "CACHE_DIR_ENV",
    "DIR_SUFFIX",
    "FORMAT_VERSION",
    "ActionCache",
    "ActionResult",
    "Cache",
    "Digest",
    "GcReport",
    "HashStats",
    "Hasher",
    "ManifestEntry",
    "ObjectStore",
    "OutRecord",
    "StateTable",
    "collect",
    "hash_bytes",
    "remove",
]
