"""Content hashing with a state table, content-addressed objects, the action cache and gc."""

from __future__ import annotations

from mlbuild.cache.actions import ActionCache, ActionResult, OutRecord
from mlbuild.cache.copying import hash_regular_file
from mlbuild.cache.gc import GcReport, collect
from mlbuild.cache.hashing import Digest, Hasher, HashStats, ManifestEntry, hash_bytes
from mlbuild.cache.location import CACHE_DIR_ENV, FORMAT_VERSION, Cache
from mlbuild.cache.lookup import (
    InOutputError,
    Located,
    LookupFailedError,
    NotAnOutputError,
    NotInOutputError,
    UncachedOutputError,
    UnusableOutputError,
    locate,
)
from mlbuild.cache.names import DIR_SUFFIX, check_digest, is_digest, is_safe_relpath
from mlbuild.cache.objects import (
    BadObjectError,
    CorruptObjectError,
    MissingObjectError,
    Objects,
    remove,
)
from mlbuild.cache.quarantine import move_aside
from mlbuild.cache.state import StateTable
from mlbuild.cache.workspaces import Registration, forget, registrations

__all__ = [
    "CACHE_DIR_ENV",
    "DIR_SUFFIX",
    "FORMAT_VERSION",
    "ActionCache",
    "ActionResult",
    "BadObjectError",
    "Cache",
    "CorruptObjectError",
    "Digest",
    "GcReport",
    "HashStats",
    "Hasher",
    "InOutputError",
    "Located",
    "LookupFailedError",
    "ManifestEntry",
    "MissingObjectError",
    "NotAnOutputError",
    "NotInOutputError",
    "Objects",
    "OutRecord",
    "Registration",
    "StateTable",
    "UncachedOutputError",
    "UnusableOutputError",
    "check_digest",
    "collect",
    "forget",
    "hash_bytes",
    "hash_regular_file",
    "is_digest",
    "is_safe_relpath",
    "locate",
    "move_aside",
    "registrations",
    "remove",
]
