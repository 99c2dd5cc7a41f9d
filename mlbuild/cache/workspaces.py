"""Which workspaces use a cache: so ``gc`` in one clone keeps what the others still need.

Each workspace that runs steps against a cache notes itself in ``CACHE/workspaces/KEY.json``
(its root and the run store it records runs in; never a password). Noting costs one ``stat`` once
the file exists. ``gc`` reads every registration, keeps what each live workspace's step records
and run store reference, and forgets the workspaces that no longer exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlbuild import atomic
from mlbuild.cache.hashing import hash_bytes
from mlbuild.errors import CacheError

REGISTRY_DIR = "workspaces"


@dataclass(frozen=True)
class Registration:
    root: Path
    store: str | None  # the run store's URL (no password), None if it records no runs
    file: Path


def register(cache_root: Path, root: Path, store: str | None) -> None:
    """Note that the workspace at ``root`` (recording runs in ``store``) uses this cache."""
    key = hash_bytes(json.dumps([str(root), store]).encode())[:32]
    path = cache_root / REGISTRY_DIR / f"{key}.json"
    if not path.exists():
        atomic.write_json(path, {"root": str(root), "store": store})


def registrations(cache_root: Path) -> list[Registration]:
    """Every workspace registered in the cache at ``cache_root``.

    A registration that cannot be read is a :class:`CacheError`: guessing would let ``gc``
    delete another workspace's results.
    """
    folder = cache_root / REGISTRY_DIR
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            raw = json.loads(atomic.read_own(path))  # nor a FIFO or symlink planted there
            root, store = raw["root"], raw["store"]
            if not isinstance(root, str) or not root.startswith("/"):
                raise ValueError("root: expected an absolute path")
            if store is not None and not isinstance(store, str):
                raise ValueError("store: expected a URL")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(
                f"workspace registration {path} is unreadable ({exc}); it names a workspace "
                "whose results gc must keep: fix it, or delete it if that workspace is gone"
            ) from None
        found.append(Registration(Path(root), store, path))
    return found


def forget(registration: Registration) -> None:
    registration.file.unlink(missing_ok=True)
