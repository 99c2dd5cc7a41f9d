"""A remote cache shared by CI and laptops: a directory, an fsspec URL or a DVC remote.

A step missing from the local cache is looked up remotely; a result found there is brought into
the local cache with every object verified, then restored as a local one; what a run builds is
uploaded, objects first and the entry last. See ``remote.py`` for what is trusted and what a
failing remote does to a run (nothing but slow it down).
"""

from __future__ import annotations

from mlbuild.cache.remote.backend import Backend, Opened, RemoteFileError, entry_key, object_key
from mlbuild.cache.remote.cloud import FsspecBackend
from mlbuild.cache.remote.directory import DirectoryBackend
from mlbuild.cache.remote.remote import RemoteCache, RemoteError, RemoteReport
from mlbuild.cache.remote.settings import (
    PUSH_ENV,
    READ_ONLY_ENV,
    REMOTE_ENV,
    RemoteSettings,
    open_remote,
    read_only_from,
    remote_settings,
)
from mlbuild.cache.remote.uploads import Uploads

__all__ = [
    "PUSH_ENV",
    "READ_ONLY_ENV",
    "REMOTE_ENV",
    "Backend",
    "DirectoryBackend",
    "FsspecBackend",
    "Opened",
    "RemoteCache",
    "RemoteError",
    "RemoteFileError",
    "RemoteReport",
    "RemoteSettings",
    "Uploads",
    "entry_key",
    "object_key",
    "open_remote",
    "read_only_from",
    "remote_settings",
]
