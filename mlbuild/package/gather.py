"""Gather what a package holds from the workspace: the model from the verified cache, its code,
the lock, and where it comes from (the registered model version made of the same bytes)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.package.bundle import Bundle, code_files, make_bundle
from mlbuild.package.errors import BundleError
from mlbuild.package.locks import read_lock
from mlbuild.package.provenance import Provenance


@dataclass(frozen=True)
class Gathered:
    bundle: Bundle
    provenance: Provenance
    source: Any  # the ModelSource the in-process predictions of the smoke test load


def gather(ws: Any, graph: Any, *, store: Any | None, version: int | None = None) -> Gathered:
    """The bundle of ``graph``'s model as the cache holds it for the current recipe and params.

    ``store`` (a run store, or None) finds the registered version whose artifacts are these
    bytes; ``version`` insists on one (and fails if its artifacts are other bytes).
    """
    from mlbuild import __version__
    from mlbuild.runs.provenance import git_info
    from mlbuild.serve.resolve import resolve_model

    if graph.package is None:
        raise BundleError(
            f"{graph.recipe_file} has no package: section; add one (see `mlbuild schema`), "
            "e.g. `package: {bundle: dist/model.tar.gz}`"
        )
    source = resolve_model(ws, graph)
    model = graph.model
    class_file = model.class_ref.rpartition(":")[0] if model.class_ref else None
    code = code_files(ws.root, graph.package.code, graph.package.code_py_only)
    if class_file is not None and class_file not in code:
        raise BundleError(
            f"package.code does not include the model class's file {class_file}; add it (or "
            "its folder)"
        )
    lock = read_lock(ws.root / graph.lock_file, graph.lock_file) if graph.lock_file else None
    registered = _registered(ws, store, model, source.digests, version)
    git = git_info(ws.root)
    recipe_digest = ws.cache.hasher.digest(graph.recipe_file)
    if registered is not None:
        prov = registered.provenance
        commit = (prov.get("git") or {}).get("commit")
        provenance = Provenance(
            model_name=model.name,
            model_digest=source.version,
            registered_version=registered.version,
            run_id=registered.run_id,
            commit=commit,
            branch=(prov.get("git") or {}).get("branch"),
            dirty=(prov.get("git") or {}).get("dirty"),
            recipe_hash=prov.get("recipe_hash"),
            lock_hash=prov.get("lock_hash"),
            data_versions=prov.get("data_versions") or {},
            created=time.time(),
            mlbuild_version=__version__,
        )
    else:
        provenance = Provenance(
            model_name=model.name,
            model_digest=source.version,
            registered_version=None,
            run_id=None,
            commit=git.commit if git else None,
            branch=git.branch if git else None,
            dirty=git.dirty if git else None,
            recipe_hash=recipe_digest.value if recipe_digest else None,
            lock_hash=lock.digest if lock else None,
            data_versions={},
            created=time.time(),
            mlbuild_version=__version__,
        )
    bundle = make_bundle(
        name=source.name,
        version=provenance.version,
        flavor=source.flavor,
        class_ref=source.class_ref,
        artifacts={name: Path(path) for name, path in source.artifacts.items()},
        digests=source.digests,
        signature=source.signature,
        code=code,
        lock=lock,
        provenance=provenance,
    )
    return Gathered(bundle, provenance, source)


def _registered(
    ws: Any, store: Any | None, model: Any, digests: dict[str, str], wanted: int | None
) -> Any | None:
    """The latest registered version of the model whose artifacts are ``digests`` (or version
    ``wanted``, which must be)."""
    if store is None:
        return None
    from mlbuild.errors import NotFoundError

    try:
        versions = store.model_versions(model.name)
    except NotFoundError:
        if wanted is not None:
            raise
        return None
    paths = {name: model.artifacts[name] for name in digests}
    matching = [v for v in versions if _holds(ws, v, paths, digests)]
    if wanted is None:
        return matching[-1] if matching else None
    chosen = next((v for v in versions if v.version == wanted), None)
    if chosen is None:
        known = ", ".join(str(v.version) for v in versions)
        raise NotFoundError(f"model '{model.name}' has no version {wanted}; it has {known}")
    if chosen not in matching:
        raise BundleError(
            f"model '{model.name}' version {wanted} (run {chosen.run_id[:8]}) was registered with "
            "other artifacts than the workspace's model; check out its commit and run `mlbuild "
            "run`, or register the current run (`mlbuild model register RUN --name "
            f"{model.name}`)"
        )
    return chosen


def _holds(ws: Any, version: Any, paths: dict[str, str], digests: dict[str, str]) -> bool:
    """Whether model ``version``'s artifacts hold each file of ``paths`` with its digest."""
    from mlbuild.cache import CorruptObjectError, MissingObjectError
    from mlbuild.paths import is_within

    for name, path in paths.items():
        found = False
        for artifact in version.artifacts:
            stored = artifact.path.rstrip("/")
            if stored == path:
                found = artifact.digest == digests[name]
            elif is_within(path, stored):
                try:
                    entries = ws.cache.objects.read_manifest(artifact.digest)
                except (MissingObjectError, CorruptObjectError):
                    return False
                inner = path[len(stored) + 1 :]
                found = any(e.relpath == inner and e.digest == digests[name] for e in entries)
            if found:
                break
        if not found:
            return False
    return True
