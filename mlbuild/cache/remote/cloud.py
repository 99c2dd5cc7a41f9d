"""A remote cache behind an fsspec filesystem: S3 (AWS, Ceph RGW, MinIO), GCS, Azure, SFTP.

fsspec and its backends (s3fs pulls in aiobotocore and botocore: ~0.5 s to import) are imported
only when a remote is first used, never by ``mlbuild --help`` or a run that finds every step in
the local cache.

How a file is written so that a reader sees all of it or nothing depends on the store: an object
store's PUT is atomic per object (S3, GCS, Azure Blob), so a file is written in place; a
filesystem with a rename (SFTP) gets a temporary name first; where the rename fails, the size is
checked after writing and a short file removed.

Credentials come from each library's conventions (``AWS_*`` variables, ``~/.aws``, instance
roles; ``GOOGLE_APPLICATION_CREDENTIALS``; ``AZURE_STORAGE_*``; SSH keys and agent), never from
the recipe. An S3 endpoint comes from ``options: {endpoint_url: …}`` or ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlbuild.cache.remote.backend import Opened
from mlbuild.extras import MissingExtraError, check_extra, missing_extra, require
from mlbuild.remote_address import RemoteAddress

# stores whose PUT replaces an object atomically: a reader sees the old object or the new one
_ATOMIC_PUT = {"s3", "s3a", "gcs", "gs", "az", "abfs", "abfss", "adl", "memory"}
# a remote that does not answer must not hold a run up: fail fast, warn, go on without it
_S3_DEFAULTS = {
    "config_kwargs": {
        "connect_timeout": 5,
        "read_timeout": 60,
        "retries": {"max_attempts": 2, "mode": "standard"},
    }
}


class FsspecBackend:
    """Files under ``root`` of the fsspec filesystem ``fs``; see
    :class:`~mlbuild.cache.remote.backend.Backend`."""

    def __init__(self, fs: Any, root: str, shown: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.shown = shown
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        self.atomic_put = protocol in _ATOMIC_PUT

    @staticmethod
    def check_installed(address: RemoteAddress) -> None:
        """Raise :class:`MissingExtraError` now, before any work, if ``address`` needs a library
        that is not installed; imports nothing."""
        purpose = f"the remote cache {address.shown}"
        if address.protocol == "s3":
            check_extra("remote", purpose)
            return
        for module in ("fsspec", address.package):
            try:
                found = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                found = None
            if found is None:
                raise _missing(module, purpose)

    @classmethod
    def connect(cls, url: str, options: dict[str, Any], shown: str, package: str) -> FsspecBackend:
        """The backend for ``url`` (``s3://bucket/prefix``), with fsspec ``options``."""
        core = require("fsspec.core", "remote", f"the remote cache {shown}")
        protocol = url.split("://", 1)[0]
        if protocol == "s3":
            require("s3fs", "remote", f"the remote cache {shown}")
            options = {**_S3_DEFAULTS, **options}
        else:
            try:
                importlib.import_module(package)
            except ModuleNotFoundError:
                raise _missing(package, f"the remote cache {shown}") from None
        fs, root = core.url_to_fs(url, **options)
        return cls(fs, root, shown)

    @contextlib.contextmanager
    def opened(self, key: str) -> Iterator[Opened]:
        with self.fs.open(self._path(key), "rb") as handle:
            size = getattr(handle, "size", None)
            if size is None:
                size = self.fs.size(self._path(key))
            yield Opened(int(size), handle.read)

    def size(self, key: str) -> int | None:
        try:
            found = self.fs.size(self._path(key))
        except FileNotFoundError:
            return None
        return None if found is None else int(found)

    def write(self, key: str, data: bytes) -> None:
        self._store(key, len(data), lambda path: self.fs.pipe_file(path, data))

    def upload(self, key: str, source: Path, size: int) -> None:
        self._store(key, size, lambda path: self.fs.put_file(str(source), path))

    def _store(self, key: str, size: int, put: Any) -> None:
        path = self._path(key)
        if self.atomic_put:
            put(path)
            return
        self.fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        folder, _, name = path.rpartition("/")
        tmp = f"{folder}/.{name}.{os.urandom(6).hex()}.tmp"
        put(tmp)
        try:
            self.fs.mv(tmp, path)
        except Exception:  # no rename here (or the target exists): write in place, then check
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            put(path)
            if self.size(key) != size:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(path)
                raise OSError(f"{self.shown}/{key} was not written whole") from None

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key


def _missing(module: str, purpose: str) -> MissingExtraError:
    if module == "fsspec":
        return missing_extra("remote", purpose, module)
    return MissingExtraError(
        f"{purpose} needs the '{module}' package, which is not installed; install it with "
        f"`pip install {module}`"
    )
