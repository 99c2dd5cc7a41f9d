"""Content hashing with a state table, content-addressed objects, the action cache and gc.

The names load on first use (PEP 562): a name imports only the submodule that defines it, so a
`plan` does not load what only a run needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.cache.actions import ActionCache as ActionCache
    from mlbuild.cache.actions import ActionResult as ActionResult
    from mlbuild.cache.actions import OutRecord as OutRecord
    from mlbuild.cache.copying import hash_regular_file as hash_regular_file
    from mlbuild.cache.gc import GcReport as GcReport
    from mlbuild.cache.gc import collect as collect
    from mlbuild.cache.hashing import Digest as Digest
    from mlbuild.cache.hashing import Hasher as Hasher
    from mlbuild.cache.hashing import HashStats as HashStats
    from mlbuild.cache.hashing import ManifestEntry as ManifestEntry
    from mlbuild.cache.hashing import hash_bytes as hash_bytes
    from mlbuild.cache.location import CACHE_DIR_ENV as CACHE_DIR_ENV
    from mlbuild.cache.location import FORMAT_VERSION as FORMAT_VERSION
    from mlbuild.cache.location import Cache as Cache
    from mlbuild.cache.lookup import InOutputError as InOutputError
    from mlbuild.cache.lookup import Located as Located
    from mlbuild.cache.lookup import LookupFailedError as LookupFailedError
    from mlbuild.cache.lookup import NotAnOutputError as NotAnOutputError
    from mlbuild.cache.lookup import NotInOutputError as NotInOutputError
    from mlbuild.cache.lookup import UncachedOutputError as UncachedOutputError
    from mlbuild.cache.lookup import UnusableOutputError as UnusableOutputError
    from mlbuild.cache.lookup import locate as locate
    from mlbuild.cache.names import DIR_SUFFIX as DIR_SUFFIX
    from mlbuild.cache.names import check_digest as check_digest
    from mlbuild.cache.names import is_digest as is_digest
    from mlbuild.cache.names import is_safe_relpath as is_safe_relpath
    from mlbuild.cache.objects import BadObjectError as BadObjectError
    from mlbuild.cache.objects import CorruptObjectError as CorruptObjectError
    from mlbuild.cache.objects import MissingObjectError as MissingObjectError
    from mlbuild.cache.objects import Objects as Objects
    from mlbuild.cache.objects import remove as remove
    from mlbuild.cache.quarantine import move_aside as move_aside
    from mlbuild.cache.state import StateTable as StateTable
    from mlbuild.cache.workspaces import Registration as Registration
    from mlbuild.cache.workspaces import forget as forget
    from mlbuild.cache.workspaces import registrations as registrations

_NAMES = {
    "ActionCache": "actions",
    "ActionResult": "actions",
    "OutRecord": "actions",
    "hash_regular_file": "copying",
    "GcReport": "gc",
    "collect": "gc",
    "Digest": "hashing",
    "Hasher": "hashing",
    "HashStats": "hashing",
    "ManifestEntry": "hashing",
    "hash_bytes": "hashing",
    "CACHE_DIR_ENV": "location",
    "FORMAT_VERSION": "location",
    "Cache": "location",
    "InOutputError": "lookup",
    "Located": "lookup",
    "LookupFailedError": "lookup",
    "NotAnOutputError": "lookup",
    "NotInOutputError": "lookup",
    "UncachedOutputError": "lookup",
    "UnusableOutputError": "lookup",
    "locate": "lookup",
    "DIR_SUFFIX": "names",
    "check_digest": "names",
    "is_digest": "names",
    "is_safe_relpath": "names",
    "BadObjectError": "objects",
    "CorruptObjectError": "objects",
    "MissingObjectError": "objects",
    "Objects": "objects",
    "remove": "objects",
    "move_aside": "quarantine",
    "StateTable": "state",
    "Registration": "workspaces",
    "forget": "workspaces",
    "registrations": "workspaces",
}
__getattr__ = lazy_getattr(__name__, _NAMES)
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
