"""Where a worker runs its trials: a copy of the workspace of its own, sharing the cache.

Trials change what their steps write — outputs, and params files mlbuild writes overrides into —
so two trials at once in one folder would trample each other, and a trial in the user's own
workspace would leave it holding the last trial's model. Each worker process therefore takes a
free *slot* (a lock file, released by the kernel when the process dies, even by SIGKILL) and runs
in that slot's copy, ``.mlbuild/search/NAME/worker-K/``, which shares the workspace's cache: an
upstream step one worker ran is restored by every other, and a trial's fingerprint seen before is
a cache hit wherever it ran.

The copy holds what git sees (tracked and untracked files that are not ignored) or, outside git,
every file; plus every dep and dataset the recipe declares (DVC data is git-ignored). It never
holds a step's outputs (they come from the cache), ``.git``, ``.mlbuild`` or the cache. Syncing
copies only files whose size or modification time changed, and removes only files it copied.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from mlbuild import atomic
from mlbuild.cache import Cache
from mlbuild.git import git
from mlbuild.graph import Graph, StepRecords, Workspace
from mlbuild.paths import META_DIR, is_within

_MANIFEST = "search-copy.json"  # in the copy's .mlbuild: the files the sync copied
_SKIP_DIRS = {".git", META_DIR, "__pycache__", "node_modules"}


def search_dir(ws: Workspace, name: str) -> Path:
    return ws.meta / "search" / name


@contextlib.contextmanager
def worker_slot(ws: Workspace, name: str) -> Iterator[tuple[int, Path]]:
    """Hold the first free worker slot of search ``name``; yields its number and its copy's
    folder."""
    folder = search_dir(ws, name)
    folder.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        fd = os.open(folder / f"worker-{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            index += 1
            continue
        try:
            yield index, folder / f"worker-{index}"
        finally:
            os.close(fd)
        return


def worker_workspace(ws: Workspace, copy: Path) -> Workspace:
    """The workspace of ``copy``: its own ``.mlbuild`` (state, step records, run lock), the
    cache of ``ws``."""
    meta = copy / META_DIR
    shared = Cache.open(ws.root, ws.meta)  # MLBUILD_CACHE_DIR, else the workspace's own
    own = Cache.open(copy, meta)
    cache = Cache(shared.root, shared.objects, shared.actions, own.state, own.hasher)
    recipe = copy / ws.recipe_path.relative_to(ws.root)
    worker = Workspace(copy, recipe, meta, cache, StepRecords(meta / "steps"))
    worker.ensure_meta()
    return worker


def sync_copy(ws: Workspace, graph: Graph, copy: Path) -> int:
    """Bring ``copy`` up to date with the workspace's inputs; returns the files copied."""
    wanted = sorted(_inputs(ws, graph))
    meta = copy / META_DIR
    meta.mkdir(parents=True, exist_ok=True)
    manifest = meta / _MANIFEST
    before = _read_manifest(manifest)
    copied = 0
    stamps: dict[str, list[int]] = {}
    for rel in wanted:
        done, stamps[rel] = _sync_one(ws.root / rel, copy / rel, before.get(rel))
        copied += done
    for rel in sorted(set(before) - set(wanted)):
        target = copy / rel
        if target.is_symlink() or target.is_file():
            target.unlink()
    atomic.write_text(manifest, json.dumps(stamps), sync=False)
    return copied


def _read_manifest(manifest: Path) -> dict[str, list[int] | None]:
    """The files the last sync copied, each with the stamp its source had then (none from a
    manifest of the older shape, a list of names: those files are copied once more)."""
    try:
        raw = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(raw, list):
        return {rel: None for rel in raw if isinstance(rel, str)}
    if isinstance(raw, dict):
        return {rel: v if isinstance(v, list) else None for rel, v in raw.items()}
    return {}


def _sync_one(source: Path, target: Path, recorded: list[int] | None) -> tuple[int, list[int]]:
    """Copy ``source`` to ``target`` unless the copy is current: the source's stamp (inode,
    size, mtime, ctime — an edit that keeps the size and sets the mtime back still changes the
    ctime) is the one recorded when it was copied, and the copy still has its size and mtime."""
    try:
        info = source.lstat()
    except FileNotFoundError:
        return 0, []
    stamp = [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        link = os.readlink(source)
        if target.is_symlink() and os.readlink(target) == link:
            return 0, stamp
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(link)
        return 1, stamp
    try:
        have = target.lstat()
        current = (have.st_size, have.st_mtime_ns) == (info.st_size, info.st_mtime_ns)
        if current and recorded == stamp:
            return 0, stamp
    except FileNotFoundError:
        pass
    staged = target.with_name(f".{target.name}.mlbuild-sync")
    shutil.copy2(source, staged, follow_symlinks=False)
    os.replace(staged, target)
    return 1, stamp


def _inputs(ws: Workspace, graph: Graph) -> set[str]:
    """Relative paths of the files a worker's copy holds."""
    outputs = [out.path for step in graph.steps.values() for out in step.outs]
    skipped = [*outputs, *([graph.hydra_output_dir] if graph.hydra_output_dir else [])]
    listed = git(ws.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    found: set[str] = set()
    if listed is not None:
        found.update(p for p in listed.decode("utf-8", "surrogateescape").split("\0") if p)
    else:
        found.update(_walk(ws.root, ""))
    declared = [d for s in graph.steps.values() for d in s.deps]
    declared += [d.path for d in graph.datasets.values()]
    declared += list(graph.protected) + ([graph.lock_file] if graph.lock_file else [])
    for path in declared:
        found.update(_walk(ws.root, path))
    return {
        rel
        for rel in found
        if PurePosixPath(rel).parts
        and PurePosixPath(rel).parts[0] not in _SKIP_DIRS
        and not any(is_within(rel, out) for out in skipped)
        and ((ws.root / rel).is_file() or (ws.root / rel).is_symlink())
    }


def _walk(root: Path, rel: str) -> Iterator[str]:
    """The files (and symlinks) at or below ``rel``, skipping virtualenvs and mlbuild's state."""
    start = root / rel if rel else root
    if start.is_symlink() or start.is_file():
        yield rel
        return
    for folder, dirs, files in os.walk(start):
        here = Path(folder)
        dirs[:] = [
            d
            for d in dirs
            if d not in _SKIP_DIRS
            and not (here / d / "pyvenv.cfg").exists()
            and not (here / d).is_symlink()
        ]
        links = [d for d in os.listdir(here) if (here / d).is_symlink() and (here / d).is_dir()]
        for name in [*files, *links]:
            yield (here / name).relative_to(root).as_posix()
