"""The cache as one object: its location, its objects, action cache, state table and hasher."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from mlbuild.cache import lock, workspaces
from mlbuild.cache.actions import ActionCache
from mlbuild.cache.hashing import Hasher
from mlbuild.cache.objects import Objects
from mlbuild.cache.recent import RecentEntries
from mlbuild.cache.state import StateTable

CACHE_DIR_ENV = "MLBUILD_CACHE_DIR"
FORMAT_VERSION = 1


@dataclass
class Cache:
    """The workspace's cache. ``MLBUILD_CACHE_DIR`` points many clones at one shared cache."""

    root: Path
    objects: Objects
    actions: ActionCache
    state: StateTable
    hasher: Hasher

    @classmethod
    def open(cls, workspace: Path, meta_dir: Path) -> Cache:
        """The cache for ``workspace``; ``meta_dir`` is its ``.mlbuild`` directory."""
        configured = os.environ.get(CACHE_DIR_ENV)
        root = Path(configured).expanduser().resolve() if configured else meta_dir / "cache"
        state = StateTable(meta_dir / "state.db")
        return cls(
            root=root,
            objects=Objects(root / "objects"),
            actions=ActionCache(root / "actions", RecentEntries(meta_dir / "entries.db")),
            state=state,
            hasher=Hasher(workspace, state),
        )

    def save(self) -> None:
        """Persist what this command learnt: file hashes (the state table) and the entries it
        read (their batch, :mod:`mlbuild.cache.recent`)."""
        self.state.save()
        if self.actions.recent is not None:
            self.actions.recent.save()

    def writing(self, on_wait: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """Hold while storing or restoring a step's results, so ``gc`` never collects between
        an object and the entry and step record that reference it (see ``lock.py``)."""
        return lock.shared(self.root, on_wait)

    def collecting(
        self, *, wait: bool, on_wait: Callable[[str], None]
    ) -> AbstractContextManager[None]:
        """Hold while ``gc`` decides what is unreferenced and removes it."""
        return lock.exclusive(self.root, wait=wait, on_wait=on_wait)

    def register(self, workspace: Path, store: str | None) -> None:
        """Note that ``workspace`` (recording runs in ``store``) uses this cache."""
        workspaces.register(self.root, workspace, store)
