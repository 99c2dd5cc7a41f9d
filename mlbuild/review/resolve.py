"""One side of a diff, resolved the way ``mlbuild run`` would resolve it.

The recipe is compiled through the engine's own :func:`~mlbuild.graph.load_graph` (so Hydra
composition, interpolation and every check are exactly a run's, and a side compiled once is not
composed again), its paths are checked against the fence as the tree is now, and each step's
fingerprint inputs are computed with :func:`~mlbuild.graph.components`. Data versions come from
DVC's metadata at that side (no DVC import, nothing fetched).

:func:`cache_plan` then walks the steps in order as ``mlbuild plan`` does: a step whose inputs are
all known has its real fingerprint, looked up in the action cache; a step after one that must run
waits for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.cache import DIR_SUFFIX, Cache, Hasher, StateTable
from mlbuild.data import DataError, DatasetSpec, resolve_kind
from mlbuild.data.version import find_dvc_hash, read_record
from mlbuild.errors import MlbuildError, RecipeError
from mlbuild.graph import (
    Components,
    Graph,
    StepSpec,
    Workspace,
    components,
    fingerprint,
    load_graph,
)
from mlbuild.graph.checks import path_problems, produced
from mlbuild.review.locks import LockReadError, read_lock
from mlbuild.review.revisions import Side

MISSING = "missing"


@dataclass(frozen=True)
class DataFact:
    """A dataset's version at one side: DVC's hash, ``REPO@REV:PATH`` for an import, the
    content hash of a plain path — or, with kind ``error``, why it has none."""

    kind: str  # dvc | import | file | error
    version: str


@dataclass
class Resolved:
    side: Side
    graph: Graph
    sections: dict[str, Any]  # the recipe's top-level mapping, as written
    data: dict[str, DataFact]
    packages: dict[str, str] | None  # the environment lock's pins, if there is one
    lock_error: str | None
    lock_digest: str | None
    own: dict[str, Components]  # each step's fingerprint inputs, other steps' outputs unknown
    cache: Cache
    workspace: Workspace


def resolve(side: Side, ws: Workspace, overrides: list[str]) -> Resolved:
    """Compile ``side`` with ``overrides``; a bad recipe raises :class:`RecipeError` naming the
    side (``main:ml.yaml:4:3: …``)."""
    cache = ws.cache if side.kind == "worktree" else _side_cache(side, ws)
    try:
        if side.kind == "worktree":
            graph = ws.graph(overrides)
        else:
            side.meta.mkdir(parents=True, exist_ok=True)
            graph = load_graph(side.recipe, side.meta, cache.hasher, overrides, cache=cache.root)
        problems = path_problems(graph, graph.fence(side.root, cache.root))
        if problems:
            raise RecipeError(problems)
        sections = _sections(side)
    except RecipeError as exc:
        raise RecipeError([_relabel_problem(side, p) for p in exc.problems]) from None
    except MlbuildError as exc:  # Hydra's, say: name the side it comes from
        if side.kind != "worktree":
            exc.message = f"{side.where}: {_relabel(side, exc.message)}{_skipped(side)}"
            exc.args = (exc.message,)
        raise
    lock_digest = None
    packages = lock_error = None
    if graph.lock_file is not None:
        digest = cache.hasher.digest(graph.lock_file)
        lock_digest = digest.value if digest else None
        try:
            packages = read_lock(side.root / graph.lock_file)
        except LockReadError as exc:
            lock_error = f"{graph.lock_file}: {exc}"
    data = {
        name: _data_fact(side.root, spec, cache.hasher) for name, spec in graph.datasets.items()
    }
    own = {
        name: components(
            graph,
            step,
            {
                dep: None if produced(graph, dep) else _digest(cache.hasher, dep)
                for dep in step.deps
            },
            lock_digest,
            {d: data[d].version for d in step.data},
        )
        for name, step in graph.steps.items()
    }
    cache.state.save()
    return Resolved(side, graph, sections, data, packages, lock_error, lock_digest, own, cache, ws)


def _side_cache(side: Side, ws: Workspace) -> Cache:
    """The workspace's cache (objects, action entries) with this side's own file hashes."""
    state = StateTable(side.meta / "state.db")
    return dataclasses.replace(ws.cache, state=state, hasher=Hasher(side.root, state))


def _relabel(side: Side, text: str) -> str:
    if side.kind != "revision":
        return text
    prefix = side.where.rpartition(":")[0]
    return text.replace(f"{side.root}/", f"{prefix}:").replace(str(side.root), f"{prefix}:.")


def _relabel_problem(side: Side, problem: Any) -> Any:
    file = side.where if side.kind == "revision" else problem.file
    return problem._replace(file=file, message=_relabel(side, problem.message) + _skipped(side))


def _skipped(side: Side) -> str:
    """What the copy of a revision left out, which may be why its recipe fails there."""
    return f" (not copied from git: {'; '.join(side.skipped)})" if side.skipped else ""


def _sections(side: Side) -> dict[str, Any]:
    from mlbuild.recipe import safe_load_yaml
    from mlbuild.recipe.limits import read_limited

    raw = safe_load_yaml(read_limited(side.recipe, side.where).decode("utf-8"))
    return raw if isinstance(raw, dict) else {}


def _digest(hasher: Hasher, path: str) -> str:
    found = hasher.digest(path)
    return found.value if found else MISSING


def _data_fact(root: Path, spec: DatasetSpec, hasher: Hasher) -> DataFact:
    try:
        kind = resolve_kind(root, spec)
        if kind == "import":
            return DataFact(
                kind, f"{spec.import_repo}@{spec.import_rev or 'HEAD'}:{spec.import_path}"
            )
        if kind == "dvc":
            found = find_dvc_hash(root, spec.path)
            return DataFact(kind, found[0] if found else MISSING)
    except DataError as exc:
        return DataFact("error", exc.message)
    return DataFact("file", _digest(hasher, spec.path))


# ---- what a run at this side does with the cache ----------------------------------------------


@dataclass(frozen=True)
class CachePlan:
    """``cached``: the action cache holds the result of the step's exact inputs; ``run``: it
    does not; ``pending``: it runs after ``after``, whose outputs are not known yet."""

    action: str  # cached | run | pending
    fingerprint: str | None = None
    after: tuple[str, ...] = ()
    note: str = ""


def cache_plan(res: Resolved) -> dict[str, CachePlan]:
    """What ``mlbuild run`` at this side would take from the cache and what it would run."""
    graph, cache = res.graph, res.cache
    known: dict[str, str] = {}  # outputs the cache will supply → their digests
    waiting: set[str] = set()
    plans: dict[str, CachePlan] = {}
    for name, step in graph.steps.items():
        after = tuple(u for u in step.upstream if u in waiting)
        deps = _deps(res, step, known)
        data = _data_versions(res, step)
        if after or deps is None or data is None:
            note = "" if after else "an input is not known before it runs"
            plans[name] = CachePlan("pending", after=after, note=note)
            waiting.add(name)
            continue
        fp = fingerprint(components(graph, step, deps, res.lock_digest, data))
        result = cache.actions.get(fp)
        usable = result is not None and all(
            cache.objects.holds(r.digest, r.size) for r in result.outs.values() if r.cached
        )
        if step.always_run or result is None or not usable:
            note = "always_run is set" if step.always_run else "no cached result for these inputs"
            plans[name] = CachePlan("run", fp, note=note)
            waiting.add(name)
            continue
        assert result is not None
        for path, record in result.outs.items():
            known[path] = record.digest
            if record.digest.endswith(DIR_SUFFIX):  # deps may name a file inside it
                for entry in cache.objects.read_manifest(record.digest):
                    known[f"{path}/{entry.relpath}"] = entry.digest
        plans[name] = CachePlan("cached", fp)
    return plans


def _deps(res: Resolved, step: StepSpec, known: dict[str, str]) -> dict[str, str | None] | None:
    deps: dict[str, str | None] = {}
    for dep in step.deps:
        if dep in known:
            deps[dep] = known[dep]
        elif produced(res.graph, dep):
            return None  # an output the cache does not describe (a folder holding outputs)
        else:
            deps[dep] = res.own[step.name]["deps"][dep]
    return deps


def _data_versions(res: Resolved, step: StepSpec) -> dict[str, str] | None:
    """The versions a run's fingerprint uses; ``None`` when an import was never resolved here
    (its commit is known only once DVC has asked the other repository)."""
    versions = {}
    for name in step.data:
        fact = res.data[name]
        if fact.kind == "import":
            spec = res.graph.datasets[name]
            record = read_record(res.workspace.meta, name)
            wanted = {"repo": spec.import_repo, "rev": spec.import_rev, "path": spec.import_path}
            if record is None or {k: record.source.get(k) for k in wanted} != wanted:
                return None
            versions[name] = f"{record.source.get('commit')}:{record.version}"
        else:
            versions[name] = fact.version
    return versions
