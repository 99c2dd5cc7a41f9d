"""Objects between a remote and the local store, verified on the way in.

A remote is written by every clone and CI job that shares it, so nothing read from it is
trusted: an object is hashed while it is written into the local store, and kept only if its bytes
are exactly as many as the entry says and hash to its name — otherwise the temporary file is
removed and the local store never holds it. Reading stops at the expected size: a huge file
planted at a key costs no more than the object it replaces.
"""

from __future__ import annotations

from blake3 import blake3

from mlbuild import atomic
from mlbuild.cache.copying import hash_regular_file
from mlbuild.cache.objects import CorruptObjectError, MissingObjectError, Objects
from mlbuild.cache.remote.backend import Opened

_CHUNK = 1 << 20


class DamagedError(Exception):
    """What a remote holds at a key is not the object it is named after; ``problem`` says how."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def receive(objects: Objects, digest: str, size: int, source: Opened) -> int:
    """Write the remote object ``digest`` of ``size`` bytes, read from ``source``, into
    ``objects``; the bytes written. Raises :class:`DamagedError` (nothing is stored then)."""
    if source.size != size:
        raise DamagedError(size_problem(source.size, size))
    hasher = blake3()
    received = 0
    with atomic.replacing(objects.path_of(digest), mode=0o444, size=size) as tmp:
        with open(tmp, "wb") as out:
            while received <= size:
                chunk = source.read(min(_CHUNK, size + 1 - received))
                if not chunk:
                    break
                received += len(chunk)
                hasher.update(chunk)
                out.write(chunk)
        if received != size:
            raise DamagedError(size_problem(received, size))
        if hasher.hexdigest() != digest:
            raise DamagedError("does not match its digest (altered)")
    return size


def read_whole(source: Opened, limit: int) -> bytes:
    """All of a small remote file (an entry, a manifest); :class:`DamagedError` past ``limit``."""
    if source.size > limit:
        raise DamagedError(f"is {source.size:,} bytes, more than the {limit:,} mlbuild reads")
    parts = []
    total = 0
    while chunk := source.read(min(_CHUNK, limit + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise DamagedError(f"is more than the {limit:,} bytes mlbuild reads")
    return b"".join(parts)


def check_local(objects: Objects, digest: str) -> None:
    """Raise :class:`CorruptObjectError` unless the local object ``digest`` hashes to its name:
    a damaged local object must not reach every other clone through the remote."""
    found = hash_regular_file(objects.path_of(digest))
    if found is None:
        raise MissingObjectError(digest)
    if found != digest:
        raise CorruptObjectError(digest, "does not match its digest (altered)", None)


def size_problem(found: int, expected: int) -> str:
    if found < expected:
        return f"is {found:,} bytes, expected {expected:,} (truncated)"
    return f"is more than the {expected:,} bytes its entry says (altered)"
