"""Decide, step by step and cheapest check first, whether a step is cached, restorable or must run.

::

    deps hashed (state table) ─▶ fingerprint ─▶ action cache entry? (local, then the remote's)
        no  ──▶ RUN, with the reasons: what changed since this step's last run
        yes ──▶ workspace outputs match the entry? ── yes ─▶ CACHED
                                                   └─ no ─▶ objects present? ─ yes ─▶ RESTORE
                                                                           └─ no ─▶ RUN

A result found in the remote cache has ``source="remote"``: the executor brings it into the
local cache (verified) before restoring it, and ``plan`` says ``restore (remote)``.

The same :meth:`Planner.decide` serves ``mlbuild plan`` (before anything runs, where a step after
one that will run is PENDING) and the executor (when the step's upstream steps are done).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlbuild.cache import (
    DIR_SUFFIX,
    ActionResult,
    Cache,
    CorruptObjectError,
    MissingObjectError,
    hash_bytes,
)
from mlbuild.cache.hashing import Digest, ManifestEntry
from mlbuild.data import DataError, DataSources, DataVersion
from mlbuild.errors import RecipeError
from mlbuild.graph.checks import (
    dep_problem,
    missing_dataset,
    missing_dep,
    missing_inputs,
    missing_lock,
    path_problems,
    produced,
)
from mlbuild.graph.fingerprint import (
    Components,
    components,
    describe_dir_change,
    explain,
    fingerprint,
)
from mlbuild.graph.model import Graph, StepSpec
from mlbuild.graph.records import StepRecords
from mlbuild.paths import PathIndex, UnsafePathError, shortened

# the remote package (http.client, ssl) is imported only when a remote cache is used
if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteCache


def unrestorable(path: str, error: MissingObjectError | CorruptObjectError) -> str:
    """Why a step runs when its cached output ``path`` cannot be restored."""
    if isinstance(error, CorruptObjectError):
        return f"cached output {path} was corrupt (quarantined)"
    return "cached outputs were removed from the cache (gc)"


class Action(enum.StrEnum):
    CACHED = "cached"
    RESTORE = "restore"
    RUN = "run"
    PENDING = "pending"  # inputs come from a step that runs first; decided after it


@dataclass
class Decision:
    step: str
    action: Action
    reasons: list[str]
    fingerprint: str | None = None
    components: Components | None = None
    result: ActionResult | None = None
    after: list[str] = field(default_factory=list)
    source: str = "local"  # where ``result`` is: "local", or "remote" (not fetched yet)

    @property
    def label(self) -> str:
        """The action as ``plan`` shows it: ``restore (remote)`` for a remote hit."""
        remote = self.source == "remote" and self.result is not None
        return f"{self.action.value} (remote)" if remote else self.action.value


# a step → the identity of the executor it runs on, for its fingerprint (mlbuild.exec.executor)
IdentityHook = Callable[[StepSpec], dict[str, str]]
# a step and its cached result → why that result no longer holds outside the workspace (an image
# deleted from the Docker engine), or None; its kind's answer (mlbuild.exec.kinds.external_hook)
ExternalHook = Callable[[StepSpec, ActionResult], str | None]


class Planner:
    """Decisions for the steps of ``graph`` in workspace ``root``.

    ``identity`` says, for each step, what of the executor it runs on enters its fingerprint
    (nothing when omitted: every step on the local executor), so that ``plan`` and ``run`` agree.
    ``external`` says whether a cached result whose outputs live outside the workspace (an
    image on the Docker engine) still holds: when it does not, the step runs again.
    """

    def __init__(
        self,
        graph: Graph,
        root: Path,
        cache: Cache,
        records: StepRecords,
        data: DataSources,
        *,
        force: set[str],
        identity: IdentityHook | None = None,
        remote: RemoteCache | None = None,
        external: ExternalHook | None = None,
    ) -> None:
        self.graph = graph
        self.identity = identity
        self.external = external
        self.remote = remote
        self.root = root
        self.cache = cache
        self.records = records
        self.data = data
        self.force = force
        self._lock_digest: str | bool | None = False  # False: not computed yet
        # each path's digest, hashed (or found in the state table) once while nothing writes
        # to the tree (see hold_digests): an output is stat'ed again as the next step's dep
        self._seen: dict[str, Digest | None] | None = None

    def hold_digests(self) -> None:
        """Until :meth:`tree_changed`, take each path's digest once: the caller promises that
        nothing writes to the workspace meanwhile (a plan; a run until its first step writes)."""
        self._seen = {}

    def tree_changed(self) -> None:
        """Something is about to write to the workspace (a step restores, fetches or runs):
        from now on every digest is taken from the tree as it is, never from what was seen."""
        self._seen = None

    def _digest(self, path: str) -> Digest | None:
        seen = self._seen
        if seen is None:
            return self.cache.hasher.digest(path)
        if path not in seen:
            seen[path] = self.cache.hasher.digest(path)
        return seen[path]

    def decide(
        self,
        step: StepSpec,
        running: Collection[str] = (),
        restored: dict[str, str] | None = None,
        *,
        cached_only: bool = False,
    ) -> Decision:
        """The decision for ``step``.

        ``running`` names steps that will run before it (their outputs are unknown yet);
        ``restored`` maps outputs that will be restored from the cache first to their digests.
        ``cached_only``: only whether the local cache answers the step as it is (the
        scheduler's look in its own thread): anything else is a RUN with no reason, found
        without asking the remote or checking (and quarantining) objects to restore; the step's
        own thread decides it again in full.
        """
        waiting = sorted(s for s in step.upstream if s in running)
        # the outputs of the steps that run first, indexed once: a step gathering the last
        # file of 1,000 chains asked each of its 1,000 deps about each of 1,000 outputs
        unknown = (
            PathIndex((o.path, w) for w in waiting for o in self.graph.steps[w].outs)
            if waiting
            else None
        )
        restored = restored or {}
        deps = {
            dep: restored[dep] if dep in restored else self._dep_digest(step, dep, unknown)
            for dep in step.deps
        }
        executor = self.identity(step) if self.identity is not None else None
        parts = components(self.graph, step, deps, self._lock(), self.data_versions(step), executor)
        if waiting:
            own = [
                r
                for r in explain(self._last(step), parts, self._dir_detail(step))
                if not r.startswith("never")
            ]
            after = [f"runs after '{w}', whose {self._made(w)} may change" for w in waiting]
            reasons = [*own, *after]
            action = (
                Action.RUN if own or step.always_run or step.name in self.force else Action.PENDING
            )
            return Decision(step.name, action, reasons, components=parts, after=waiting)
        fp = fingerprint(parts)
        if step.name in self.force:
            return Decision(step.name, Action.RUN, ["--force"], fp, parts)
        if step.always_run:
            return Decision(step.name, Action.RUN, ["always_run is set"], fp, parts)
        result = self.cache.actions.get(fp)
        if result is not None and set(result.outs) != {o.path for o in step.outs}:
            # the fingerprint covers the declared outputs, so a good entry names exactly them:
            # this one was damaged or planted, and must never decide what is written where
            self.cache.actions.discard(fp)
            result = None
        source = "local"
        if result is None and cached_only:
            return Decision(step.name, Action.RUN, [], fp, parts)
        if result is None and self.remote is not None:
            # the hook: a local miss asks the remote
            result = self.remote.lookup(fp, {o.path for o in step.outs}, step.name)
            source = "remote"
        if result is None:
            reasons = explain(self._last(step), parts, self._dir_detail(step)) or [
                "no cached result for these inputs"
            ]
            return Decision(step.name, Action.RUN, reasons, fp, parts)
        gone = self.external(step, result) if self.external is not None else None
        if gone is not None:
            return Decision(step.name, Action.RUN, [gone], fp, parts)
        modified = self._outs_differ(step, result)
        if not modified:
            return Decision(step.name, Action.CACHED, [], fp, parts, result, source=source)
        if cached_only:
            return Decision(step.name, Action.RUN, [], fp, parts)
        uncached = [o.path for o in step.outs if not o.cache and o.path in modified]
        if uncached:
            reasons = [f"output {path} (cache: false) is missing" for path in uncached]
            return Decision(step.name, Action.RUN, reasons, fp, parts)
        unusable = self._unusable_outputs(result, step.name, source)
        if unusable:
            return Decision(step.name, Action.RUN, unusable, fp, parts)
        if source == "remote":
            why = [f"found in the remote cache; restores {', '.join(modified)}"]
        elif (previous := self.records.get(step.name)) is not None and previous.fingerprint == fp:
            why = [f"{path} {how}" for path, how in modified.items()]
        else:
            why = [f"inputs match an earlier run; restores {', '.join(modified)}"]
        return Decision(step.name, Action.RESTORE, why, fp, parts, result, source=source)

    def _last(self, step: StepSpec) -> Components | None:
        """What ``step``'s last run in this workspace was made of: read only to explain a run
        (a cached step, the common case of a no-op run, never needs it)."""
        previous = self.records.get(step.name)
        return previous.components if previous else None

    def manifest(self, digest: str, path: str, decision: Decision) -> list[ManifestEntry]:
        """The files of directory object ``digest`` (output ``path``), from where the decision
        found its result."""
        if decision.source == "remote" and self.remote is not None:
            return self.remote.manifest(digest, path, decision.step) or []
        return self.cache.objects.read_manifest(digest)

    def _unusable_outputs(self, result: ActionResult, step: str, source: str) -> list[str]:
        """Why ``result``'s cached outputs cannot be restored, if they cannot: checked cheaply
        (type and size, manifests read); the restore itself hashes every byte."""
        if source == "remote" and self.remote is not None:
            return self.remote.missing(result, step, self.cache.objects)
        reasons = []
        for path, record in result.outs.items():
            if not record.cached:
                continue
            try:
                self.cache.objects.check(record.digest, record.size)
            except (MissingObjectError, CorruptObjectError) as exc:
                reasons.append(unrestorable(path, exc))
        return list(dict.fromkeys(reasons))

    def manifests(self, step: StepSpec) -> dict[str, dict[str, str]]:
        """The current file hashes of ``step``'s directory deps, to record with its run."""
        found = {}
        for dep in step.deps:
            digest = self._digest(dep)
            if digest is not None and digest.manifest is not None:
                found[dep] = {e.relpath: e.digest for e in digest.manifest}
        return found

    def _made(self, name: str) -> str:
        """What step ``name`` hands to the steps after it."""
        return "best params" if self.graph.steps[name].kind == "search" else "outputs"

    def _dir_detail(self, step: StepSpec) -> Callable[[str], str]:
        def detail(dep: str) -> str:
            before = self.records.manifests(step.name).get(dep)
            now = self._digest(dep)
            if before is None or now is None or now.manifest is None:
                return ""
            return describe_dir_change(before, {e.relpath: e.digest for e in now.manifest})

        return detail

    def data_versions(self, step: StepSpec) -> dict[str, str]:
        """Versions of the datasets ``step`` reads, without fetching anything."""
        versions = {}
        for name in step.data:
            if self.data.kind(name) == "file":
                path = self.graph.datasets[name].path
                digest = self._digest(path)
                if digest is None:
                    raise RecipeError([missing_dataset(self.graph, name)])
                versions[name] = digest.value
            else:
                found = self.data.version(name)
                versions[name] = f"{found.commit}:{found.hash}" if found.commit else found.hash
        return versions

    def used_data(self, names: list[str]) -> list[DataVersion]:
        """What a run records about the datasets the steps ``names`` read; one that cannot be
        versioned (modified, or holding a FIFO) with no hash: the steps that read it failed
        saying why, and the run is still summed up and recorded."""
        used: list[DataVersion] = []
        for dataset in sorted({d for n in names for d in self.graph.steps[n].data}):
            spec = self.graph.datasets[dataset]
            if self.data.kind(dataset) == "file":
                digest = self._digest(spec.path)
                used.append(DataVersion(dataset, spec.path, "file", digest.value if digest else ""))
            else:
                try:
                    used.append(self.data.version(dataset))
                except DataError:
                    used.append(DataVersion(dataset, spec.path, self.data.kind(dataset), ""))
        return used

    def check_inputs(self, names: list[str]) -> None:
        """Raise :class:`RecipeError` listing, before anything runs, every recipe path the fence
        refuses now (a symlink may have appeared since the graph was compiled), every dep of
        ``names`` that no step makes and no file provides, a missing lock file, and the problems
        that stop one of ``names`` only (a parameter it reads that does not resolve)."""
        fence = self.graph.fence(self.root, self.cache.root)
        problems = path_problems(self.graph, fence, names)
        problems += missing_inputs(self.graph, self.root, names, self.data.kind)
        problems += [
            self.graph.problem(key, message)
            for name in names
            for key, message in self.graph.steps[name].problems
        ]
        if problems:
            raise RecipeError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))

    def _dep_digest(self, step: StepSpec, dep: str, unknown: PathIndex[str] | None) -> str | None:
        """``dep``'s digest; ``None`` when a step in ``unknown`` (that runs first) writes it."""
        if unknown is not None and unknown.overlaps_any(dep):
            return None
        written = self.graph.param_writes.get(dep)
        if written is not None:  # a params file `run` writes the overrides into first
            return hash_bytes(written.encode("utf-8"))
        try:
            digest = self._digest(dep)
        except UnsafePathError as exc:  # a symlink loop inside a dep folder, met by its walk
            raise RecipeError([dep_problem(self.graph, step, dep, exc.message)]) from None
        except OSError as exc:  # a path below a dep folder too long to open, unreadable, …
            raise RecipeError([dep_problem(self.graph, step, dep, _unreadable(dep, exc))]) from None
        if digest is None:
            if produced(self.graph, dep):
                return None
            raise RecipeError([missing_dep(self.graph, step, dep)])
        return digest.value

    def _lock(self) -> str | None:
        if self._lock_digest is False:
            lock = self.graph.lock_file
            digest = self._digest(lock) if lock else None
            if lock and digest is None:
                raise RecipeError([missing_lock(self.graph)])
            self._lock_digest = digest.value if digest else None
        return self._lock_digest if isinstance(self._lock_digest, str) else None

    def _outs_differ(self, step: StepSpec, result: ActionResult) -> dict[str, str]:
        """Outputs whose workspace copy differs from the cached result, with how."""
        differ: dict[str, str] = {}
        for out in step.outs:
            record = result.outs.get(out.path)
            current = self._digest(out.path)
            if current is None:
                differ[out.path] = "is missing"
            elif record is not None and out.cache and current.value != record.digest:
                differ[out.path] = "was modified in the workspace"
        return differ


def make_plan(planner: Planner, names: list[str]) -> list[Decision]:
    """Decisions for ``names`` (in topological order) before anything runs."""
    planner.check_inputs(names)
    planner.hold_digests()  # a plan writes nothing
    try:
        return _decide_all(planner, names)
    finally:
        planner.tree_changed()  # the caller may write next (a test session, a package)


def _decide_all(planner: Planner, names: list[str]) -> list[Decision]:
    running: set[str] = set()
    restored: dict[str, str] = {}
    decisions = []
    for name in names:
        decision = planner.decide(planner.graph.steps[name], running, restored)
        if decision.action in (Action.RUN, Action.PENDING):
            running.add(name)
        elif decision.action is Action.RESTORE and decision.result is not None:
            for path, record in decision.result.outs.items():
                restored[path] = record.digest
                if record.digest.endswith(DIR_SUFFIX):  # deps may name a file inside it
                    for entry in planner.manifest(record.digest, path, decision):
                        restored[f"{path}/{entry.relpath}"] = entry.digest
        decisions.append(decision)
    return decisions


def _unreadable(dep: str, exc: OSError) -> str:
    """``'data' cannot be read: File name too long (data/a/a/…/a, 4,200 bytes)``."""
    what = f"'{dep}' cannot be read: {exc.strerror or exc}"
    return f"{what} ({shortened(exc.filename)})" if isinstance(exc.filename, str) else what
