"""A directory's manifest object: its files as JSON, named by the hash of their names and digests.

The object is ``[[relpath, digest, size, executable], ...]``; its digest is
:func:`~mlbuild.cache.hashing.manifest_digest` of those entries (sizes are not part of it). Reading
one back checks everything before a single path is built from it: the JSON shape, each relpath (no
``..``, not absolute, no repeats, no file that is also a folder), each digest, and that the
entries hash to the name the object is stored under.
"""

from __future__ import annotations

import json

from mlbuild.cache.hashing import ManifestEntry, manifest_digest
from mlbuild.cache.names import is_digest, is_safe_relpath


def encode(entries: tuple[ManifestEntry, ...]) -> bytes:
    return json.dumps([[e.relpath, e.digest, e.size, e.executable] for e in entries]).encode()


def decode(digest: str, data: bytes) -> tuple[ManifestEntry, ...] | str:
    """The entries of manifest ``digest`` stored as ``data``, or what is wrong with it."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "is not valid JSON"
    if not isinstance(body, list):
        return "is not a list of files"
    entries = []
    seen: set[str] = set()
    for index, item in enumerate(body):
        problem = _problem(item)
        if problem is not None:
            return f"file #{index}: {problem}"
        rel, dig, size, executable = item
        if rel in seen:
            return f"lists {rel!r} twice"
        seen.add(rel)
        entries.append(ManifestEntry(rel, dig, size, executable))
    for rel in seen:
        parents = rel.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            if "/".join(parents[:depth]) in seen:
                return f"lists {'/'.join(parents[:depth])!r} as a file and as a folder"
    found = tuple(entries)
    if manifest_digest(found) != digest:
        return "does not match its digest"
    return found


def _problem(item: object) -> str | None:
    if not isinstance(item, list) or len(item) != 4:
        return "expected [path, digest, size, executable]"
    rel, dig, size, executable = item
    if not is_safe_relpath(rel):
        return f"path {str(rel)[:80]!r} is not a relative path inside the folder"
    if not is_digest(dig, file_only=True):
        return f"malformed digest {str(dig)[:80]!r}"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"size {size!r} is not a byte count"
    if not isinstance(executable, bool):
        return f"executable flag {executable!r} is not true or false"
    return None
