"""The small interface every remote cache location implements, and where things go in it.

A remote holds the same two kinds of file as the local cache, under its root::

    objects/ab/cdef…            a file's bytes, or a directory's manifest, named by digest
    actions/ab/<fingerprint>.json   an action entry, written after every object it names

A backend stores and fetches whole files by key; it knows nothing of digests or entries.
:class:`~mlbuild.cache.remote.remote.RemoteCache` does the verifying, and turns a backend's
failures into warnings.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlbuild.cache.names import check_digest


@dataclass(frozen=True)
class Opened:
    """A remote file open for reading: its size, and ``read(n)`` (up to n bytes; b"" at end)."""

    size: int
    read: Callable[[int], bytes]


class RemoteFileError(Exception):
    """A file is at the key but cannot be what the cache stored there (a symlink, a folder)."""


class Backend(Protocol):
    """A remote location. The contract, checked on every backend by
    ``tests/cache/test_remote_backends.py``:

    - ``opened(key)`` opens the file at ``key``; :class:`FileNotFoundError` when there is none,
      :class:`RemoteFileError` when what is there is not a regular file.
    - ``size(key)`` is the file's size in bytes, or ``None`` when there is none;
      :class:`RemoteFileError` when what is there is not a regular file.
    - ``write(key, data)`` and ``upload(key, source, size)`` store a file so that a reader sees
      all of it or nothing: a temporary name and a rename, a single PUT where the store has no
      rename (S3's PUT of an object is atomic), or, where neither holds, the size checked after
      writing and a short file removed. Two writers of one key leave one whole copy (the bytes
      are the same: keys are content addresses, or an entry that any writer may win).
    - Methods are called from several threads at once.
    - Any other failure (network, permission, a full disk) is raised as whatever exception the
      library raises; the caller turns it into one warning, never a failed run.
    """

    shown: str  # how the location is named in messages: never a password

    def opened(self, key: str) -> AbstractContextManager[Opened]: ...

    def size(self, key: str) -> int | None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def upload(self, key: str, source: Path, size: int) -> None: ...


def object_key(digest: str) -> str:
    """Where object ``digest`` is kept in a remote, as in the local store."""
    check_digest(digest)
    return f"objects/{digest[:2]}/{digest[2:]}"


def entry_key(fingerprint: str) -> str:
    """Where the action entry of ``fingerprint`` is kept in a remote."""
    check_digest(fingerprint)
    return f"actions/{fingerprint[:2]}/{fingerprint}.json"
