"""What a string read back from the cache must look like before it becomes a path.

Digests come from action entries, manifests, run records and the serving state, any of which can
be damaged or written by someone else: ``../../x`` must never reach ``Path`` arithmetic. A digest
is 64 lowercase hex digits (BLAKE3), with ``.dir`` for a directory's manifest. An output path or a
manifest's file path is relative, normalised and never climbs out (no ``..``, ``.``, empty parts,
backslashes or NUL).
"""

from __future__ import annotations

import re

from mlbuild.errors import CacheError

DIR_SUFFIX = ".dir"
_DIGEST = re.compile(r"[0-9a-f]{64}(?:\.dir)?")
_FILE_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(value: object, *, file_only: bool = False) -> bool:
    """``value`` is a well-formed digest (``file_only``: not a directory's)."""
    pattern = _FILE_DIGEST if file_only else _DIGEST
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def check_digest(value: object) -> str:
    """``value`` if it is a well-formed digest, else :class:`CacheError`."""
    if not is_digest(value):
        raise CacheError(
            f"malformed digest {str(value)[:80]!r} in the cache (expected 64 hex digits, "
            "optionally followed by .dir); the entry that holds it is damaged"
        )
    assert isinstance(value, str)
    return value


def is_safe_relpath(value: object) -> bool:
    """``value`` is a relative POSIX path that stays below the folder it is joined to."""
    if not isinstance(value, str) or not value or "\\" in value or "\0" in value:
        return False
    if value.startswith("/") or value.endswith("/"):
        return False
    # with no empty, "." or ".." part and no leading or trailing slash, the path is already in
    # the one spelling PurePosixPath would give it (checked for each entry read back)
    return all(part not in ("", ".", "..") for part in value.split("/"))
