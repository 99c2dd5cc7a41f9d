"""What a remote cache's address may be, and how to show one without its secrets.

One parser for the recipe's ``cache.remote`` and ``MLBUILD_REMOTE_CACHE``, so both accept exactly
the same addresses and say the same thing about a bad one:

- a path (``/mnt/team-cache``, ``../cache``, ``file:///mnt/team-cache``): a directory, written
  with temporary names and renames, as the local cache is;
- an fsspec URL: ``s3://BUCKET/PREFIX`` (AWS, or Ceph RGW / MinIO with an endpoint), ``gs://``,
  ``azure://CONTAINER/PREFIX`` (``az://``, ``abfs://``), ``sftp://HOST/PATH``;
- ``dvc://NAME``: the DVC remote of that name, its URL and credentials from DVC's config.

The module is a bottom layer (stdlib and :mod:`mlbuild.masking`, whose ``without_password`` shows
an address): the recipe's models validate with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mlbuild.masking import without_password

# scheme → (the fsspec protocol it is opened with, the package that implements it)
FSSPEC_SCHEMES: dict[str, tuple[str, str]] = {
    "s3": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "azure": ("az", "adlfs"),  # DVC's name for Azure Blob Storage
    "az": ("az", "adlfs"),
    "abfs": ("abfs", "adlfs"),
    "abfss": ("abfss", "adlfs"),
    "sftp": ("sftp", "paramiko"),
    "ssh": ("sftp", "paramiko"),
}
# a URL starts with a scheme; anything else is a path (``data/cache``, even ``a/b://c``)
URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# the JSON Schema's pattern for ``cache.remote``: a path, or a URL of a scheme above (or file, dvc)
SCHEMA_PATTERN = (
    r"^(?:(?:s3|gs|gcs|azure|az|abfs|abfss|sftp|ssh|file|dvc)://|(?![A-Za-z][A-Za-z0-9+.-]*://))"
)
EXPECTED = (
    "expected a path, an s3://, gs://, azure:// or sftp:// URL, file://PATH, or dvc://NAME "
    "(a DVC remote)"
)


@dataclass(frozen=True)
class RemoteAddress:
    """A parsed address. ``location`` is the directory (``path``), the URL as fsspec takes it
    (``fsspec``), or the DVC remote's name (``dvc``); ``shown`` is safe to print."""

    kind: Literal["path", "fsspec", "dvc"]
    location: str
    shown: str
    protocol: str = ""  # the fsspec protocol, for kind "fsspec"
    package: str = ""  # the library that protocol needs


def parse_remote(text: str, *, allow_password: bool = False) -> RemoteAddress:
    """The address ``text`` names; :class:`ValueError` saying what is wrong with a bad one.

    A password in the URL is refused unless ``allow_password`` (an environment variable is not
    committed; the recipe is).
    """
    if not text.strip():
        raise ValueError(f"is empty; {EXPECTED}")
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise ValueError("holds a control character (a newline?)")
    if URL_START.match(text) is None:
        return RemoteAddress("path", text, text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - parsed now, so a bad one is refused here
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    scheme = text.split("://", 1)[0]
    if parts.password and not allow_password:
        raise ValueError(
            "must not hold a password (ml.yaml is committed); use the storage's own credentials "
            "(environment variables, ~/.aws, a DVC remote's config.local)"
        )
    shown = without_password(text)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError("a file:// URL names a local path: file:///PATH")
        return RemoteAddress("path", parts.path, shown)
    if scheme == "dvc":
        name = parts.netloc
        if not name or parts.path.strip("/") or parts.query or parts.fragment or "@" in name:
            raise ValueError("expected dvc://NAME, NAME being a remote of `dvc remote list`")
        return RemoteAddress("dvc", name, shown)
    if scheme not in FSSPEC_SCHEMES:
        raise ValueError(f"has the unsupported scheme '{scheme}://'; {EXPECTED}")
    if not parts.hostname:
        raise ValueError(f"names no bucket, container or host after {scheme}://")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment; give options in cache.options")
    protocol, package = FSSPEC_SCHEMES[scheme]
    if scheme == "azure":  # fsspec (adlfs) knows Azure Blob Storage as az://
        text = "az://" + text.split("://", 1)[1]
    return RemoteAddress("fsspec", text, shown, protocol, package)


def password_of(url: str) -> str | None:
    """The password ``url`` holds, to mask it wherever a library's message might repeat it."""
    if URL_START.match(url) is None:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None
