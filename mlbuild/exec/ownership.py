"""Outputs are removed or replaced only when mlbuild made them, or when they can be had back.

The ownership ledger, ``.mlbuild/owned.json``, maps each output path the engine wrote — by running
a step or restoring it — to the content hash it left there. An output is *claimed* (recorded with
no hash) before the step's process starts or the restore begins, so the partial output of a failed
or killed step is still known as ours; it is *settled* with its hash when the step is done.

An existing output may be removed or replaced when:

1. the ledger has it, claimed, or holding the very bytes mlbuild left there;
2. its current bytes are in the cache (a restore can bring them back);
3. git tracks it and nothing in it differs from ``HEAD`` (git can bring it back).

Otherwise the step does not run, and the message names the path and the fix: nothing of the
user's — a file they put there, or an output they edited — is ever lost.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping

from mlbuild import atomic
from mlbuild.cache import Digest
from mlbuild.errors import MlbuildError
from mlbuild.git import tracked_and_clean
from mlbuild.graph import Workspace

LEDGER = "owned.json"


class NotOursError(MlbuildError):
    """An output path holds something mlbuild did not make and could not bring back."""


class Ownership:
    """The ledger of one workspace; safe to use from the executor's step threads."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.path = ws.meta / LEDGER
        self._lock = threading.Lock()
        self._entries: dict[str, str | None] | None = None

    def check_removable(self, path: str) -> None:
        """Raise :class:`NotOursError` unless what is at output ``path`` may be removed."""
        full = self.ws.root / path
        if not os.path.lexists(full):
            return
        with self._lock:
            entries = self._load()
            claimed = path in entries and entries[path] is None
            left = entries.get(path)
        if claimed:
            return  # a step of ours was writing it when it failed or was killed
        digest = self.ws.cache.hasher.digest(path)
        if digest is not None and (digest.value == left or self._recoverable(digest)):
            return
        if tracked_and_clean(self.ws.root, path):
            return
        if left is not None:
            raise NotOursError(
                f"'{path}' was changed since mlbuild wrote it, and the changed version is in no "
                "cache and not committed to git; move it away or delete it, then run again"
            )
        raise NotOursError(
            f"'{path}' exists and mlbuild did not create it; move it away or delete it, "
            "then run again"
        )

    def _recoverable(self, digest: Digest) -> bool:
        """Whether the cache holds every byte at the path (for a directory, each of its files:
        a directory the user only removed files from loses nothing when replaced)."""
        manifest = digest.manifest
        files = [e.digest for e in manifest] if manifest is not None else [digest.value]
        return all(self.ws.cache.objects.holds(file) for file in files)

    def claim(self, paths: Iterable[str]) -> None:
        """Record ``paths`` as being written by mlbuild now, before anything writes them."""
        with self._lock:
            entries = self._load()
            entries.update(dict.fromkeys(paths))
            self._save(entries)

    def settle(self, digests: Mapping[str, str]) -> None:
        """Record the content hash each output was left with."""
        with self._lock:
            entries = self._load()
            entries.update(digests)
            self._save(entries)

    def _load(self) -> dict[str, str | None]:
        if self._entries is None:
            try:
                # not through a symlink, nor waiting on a FIFO planted as the ledger
                raw = json.loads(atomic.read_own(self.path))
            except (OSError, ValueError):
                raw = {}  # none yet, damaged, planted: only the cache and git vouch for outputs
            paths = raw.get("paths") if isinstance(raw, dict) else None
            self._entries = {
                str(k): v if isinstance(v, str) else None
                for k, v in (paths.items() if isinstance(paths, dict) else [])
            }
        return self._entries

    def _save(self, entries: dict[str, str | None]) -> None:
        # flushed: the claim must be on disk before the step starts
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.path, {"version": 1, "paths": entries}, sort_keys=True)
