"""``mlbuild gc`` for a cache that several workspaces may share (``MLBUILD_CACHE_DIR``).

What is kept, for every workspace registered in the cache (each registers itself when it runs)
whose folder still exists:

* every action entry its step records point at — the results its outputs come from now;
* every artifact of every registered model version in its run store (for rollbacks);
* with ``--keep-days N``, every entry used and every artifact recorded by a run in the last N
  days, in any of those run stores or run journals.

Anything that cannot be read — a registration, another workspace's step records, its run store —
stops gc with the reason: guessing would delete another clone's results. gc holds the workspace's
run lock (like ``run``) and the cache lock alone (``mlbuild/cache/lock.py``) while it decides and
deletes, so no run anywhere stores a step's results half-way through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlbuild.cache import (
    GcReport,
    Registration,
    collect,
    forget,
    is_digest,
    registrations,
)
from mlbuild.errors import CacheError, MlbuildError
from mlbuild.exec import run_lock
from mlbuild.graph import Workspace
from mlbuild.masking import without_password
from mlbuild.paths import META_DIR
from mlbuild.store import STORE_FILE, RunQuery, open_store, refuse_planted_store, store_url
from mlbuild.store.journal import JOURNAL_DIR, record_from_json


@dataclass(frozen=True)
class GcOutcome:
    report: GcReport
    workspaces: list[str]  # the live workspaces whose results were kept
    forgotten: list[str]  # registered workspaces that no longer exist


def register_workspace(ws: Workspace, configured_store: str | None) -> None:
    """Note in the cache that ``ws`` uses it and where it records runs (one ``stat`` when it is
    already noted)."""
    ws.cache.register(ws.root, without_password(store_url(ws.meta, configured_store)))


def collect_garbage(
    ws: Workspace,
    configured_store: str | None,
    *,
    keep_days: float | None,
    dry_run: bool,
    wait: bool,
    on_wait: Callable[[str], None],
) -> GcOutcome:
    """Remove what no workspace sharing ``ws``'s cache still uses (see the module docstring)."""
    with run_lock(ws.meta, wait=wait, on_wait=on_wait):
        register_workspace(ws, configured_store)
        with ws.cache.collecting(wait=wait, on_wait=on_wait):
            cutoff = time.time() - keep_days * 86400 if keep_days is not None else None
            found = registrations(ws.cache.root)
            live = [r for r in found if (r.root / META_DIR).is_dir()]
            keep: set[str] = set()
            keep_objects: set[str] = set()
            for registration in live:
                keep |= _fingerprints(registration, ws.cache.root)
                if cutoff is not None:
                    keep_objects |= _journal_artifacts(registration, cutoff)
            for url in sorted({r.store for r in live if r.store}):
                keep_objects |= _store_artifacts(url, cutoff)
            report = collect(
                ws.cache,
                keep=keep,
                keep_days=keep_days,
                dry_run=dry_run,
                keep_objects=keep_objects,
            )
            dead = [r for r in found if r not in live]
            if not dry_run:
                for registration in dead:
                    forget(registration)
    return GcOutcome(report, [str(r.root) for r in live], [str(r.root) for r in dead])


def _fingerprints(registration: Registration, cache_root: Path) -> set[str]:
    """The fingerprints the step records of a registered workspace point at."""
    folder = registration.root / META_DIR / "steps"
    found = set()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name.endswith(".deps.json"):
            continue
        try:
            fingerprint = json.loads(path.read_text(encoding="utf-8"))["fingerprint"]
            if not is_digest(fingerprint, file_only=True):
                raise ValueError(f"malformed fingerprint {str(fingerprint)[:80]!r}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CacheError(
                f"gc cannot read {path}, a step record of the workspace {registration.root} "
                f"that shares the cache at {cache_root} ({exc}); fix or delete that file (the "
                "step then re-runs there) and run gc again"
            ) from None
        found.add(fingerprint)
    return found


def _journal_artifacts(registration: Registration, cutoff: float) -> set[str]:
    """Artifacts of runs since ``cutoff`` still in a workspace's run journal (not yet moved into
    its store); a file being replaced right now is skipped, as the store's ingest does."""
    folder = registration.root / META_DIR / JOURNAL_DIR
    found = set()
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            run = record_from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if run.started >= cutoff:
            found |= {a.digest for a in run.artifacts if a.cached}
    return found


def _store_artifacts(url: str, cutoff: float | None) -> set[str]:
    """Artifacts of the model versions in the run store at ``url``, and of its runs since
    ``cutoff``."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.name == STORE_FILE and path.parent.name == META_DIR:  # a workspace's own
            refuse_planted_store(path)  # SQLite would write through a symlink planted there
        if not path.exists():
            return set()  # that workspace has never moved a run into its store
    try:
        store = open_store(url)
        try:
            found = {a.digest for v in store.model_versions(None) for a in v.artifacts}
            if cutoff is not None:
                for run in store.list_runs(RunQuery(limit=None)):  # newest first
                    if run.started < cutoff:
                        break
                    found |= {a.digest for a in run.artifacts if a.cached}
        finally:
            store.close()
    except MlbuildError as exc:
        raise CacheError(
            f"gc cannot read the run store {url} of a workspace sharing this cache "
            f"({exc.message}); its model versions' artifacts must be kept, so gc stops here"
        ) from None
    return found
