"""Which remote cache a command uses: ``MLBUILD_REMOTE_CACHE`` (which wins), else the recipe's
``cache: {remote: …}``; and whether it may be written.

``MLBUILD_REMOTE_CACHE`` set but empty turns a recipe's remote off. ``MLBUILD_REMOTE_READ_ONLY=1``,
``MLBUILD_REMOTE_CACHE_PUSH=false`` (what the pipeline of ``mlbuild ci gitlab`` sets on merge
requests) or ``run --read-only`` reads the remote and uploads nothing: for merge-request
pipelines, whose branch is not trusted to write what every other clone will restore. Read-only
wins when the two variables disagree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.cache.remote import s3
from mlbuild.cache.remote.backend import Backend
from mlbuild.cache.remote.cloud import FsspecBackend
from mlbuild.cache.remote.directory import DirectoryBackend
from mlbuild.cache.remote.remote import RemoteCache
from mlbuild.errors import UsageError
from mlbuild.masking import Secrets, remember, without_password
from mlbuild.remote_address import RemoteAddress, parse_remote, password_of

REMOTE_ENV = "MLBUILD_REMOTE_CACHE"
READ_ONLY_ENV = "MLBUILD_REMOTE_READ_ONLY"
PUSH_ENV = "MLBUILD_REMOTE_CACHE_PUSH"  # the CI pipeline's switch: "false" on merge requests
# where the storage libraries read credentials from: masked in every message about the remote
CREDENTIAL_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class RemoteSettings:
    address: RemoteAddress
    base: Path  # what a relative path is relative to: the recipe's folder, or the current one
    options: dict[str, Any] = field(default_factory=dict)
    read_only: bool = False
    password: str | None = None


def remote_settings(
    section: Mapping[str, Any] | None,
    root: Path,
    *,
    read_only: bool = False,
    environ: Mapping[str, str] | None = None,
) -> RemoteSettings | None:
    """The remote cache for a workspace at ``root`` whose recipe says ``section`` (its
    ``cache:``), or ``None``. A bad ``MLBUILD_REMOTE_CACHE`` is a :class:`UsageError`."""
    env = os.environ if environ is None else environ
    read_only = read_only_from(env) is not None or read_only
    configured = env.get(REMOTE_ENV)
    if configured is not None:
        if not configured.strip():
            return None
        try:
            address = parse_remote(configured.strip(), allow_password=True)
        except ValueError as exc:
            raise UsageError(f"{REMOTE_ENV}: '{_shown(configured)}' {exc}") from None
        password = password_of(configured)
        return RemoteSettings(address, Path.cwd(), read_only=read_only, password=password)
    if not section:
        return None
    address = parse_remote(str(section["remote"]))  # validated with the recipe
    return RemoteSettings(address, root, dict(section.get("options") or {}), read_only)


def read_only_from(env: Mapping[str, str]) -> str | None:
    """The variable that makes this environment read-only (``MLBUILD_REMOTE_READ_ONLY=1`` or
    ``MLBUILD_REMOTE_CACHE_PUSH=false``), or ``None``."""
    if _switch(env, READ_ONLY_ENV, default=False):
        return READ_ONLY_ENV
    if not _switch(env, PUSH_ENV, default=True):
        return PUSH_ENV
    return None


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    shown = "".join(c if c.isprintable() else "?" for c in value[:40])
    raise UsageError(f"{name}: expected 1 or 0 (true or false), got '{shown}'")


def open_remote(
    settings: RemoteSettings,
    *,
    local_cache: Path,
    dvc: Callable[[str], Backend],
    strict: bool = False,
) -> RemoteCache:
    """The remote cache ``settings`` name; its backend is connected on first use. ``dvc(name)``
    opens a DVC remote. A library the remote needs that is missing is an error now."""
    address = settings.address
    shown = address.shown
    connect: Callable[[], Backend]
    if address.kind == "path":
        root = (settings.base / Path(address.location).expanduser()).resolve()
        _check_apart(root, local_cache.resolve(), shown)
        connect = lambda: DirectoryBackend(root, shown)  # noqa: E731
    elif address.kind == "fsspec":
        FsspecBackend.check_installed(address)
        location, options, package = address.location, settings.options, address.package
        connect = lambda: s3.connect(location, options, shown, package)  # noqa: E731
    else:
        name = address.location
        connect = lambda: dvc(name)  # noqa: E731
    secrets = Secrets.from_env(CREDENTIAL_VARIABLES)
    if settings.password:
        secrets = secrets | Secrets([settings.password])
    remember(secrets)  # a crash log is masked too
    return RemoteCache(shown, connect, read_only=settings.read_only, strict=strict, secrets=secrets)


def _check_apart(remote: Path, local: Path, shown: str) -> None:
    if remote == local or local in remote.parents or remote in local.parents:
        raise UsageError(
            f"the remote cache {shown} is the local cache ({local}) or overlaps it; a remote is "
            "another location (a share, a bucket) that other clones reach"
        )


def _shown(value: str) -> str:
    """``value`` as a message shows it: no password, a control character escaped (``\\n``)."""
    try:
        shown = without_password(value)
    except ValueError:
        return "(its value)"
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)
