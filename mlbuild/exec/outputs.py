"""A step's outputs, for every kind: made ready before it runs, restored from the cache, committed.

Before a step runs, each output it will write is checked (inside the fence, and — if something is
there — made by mlbuild or recoverable: :mod:`mlbuild.exec.ownership`), claimed in the ownership
ledger, and removed unless ``persist: true``. After it ran, its metrics are read (a secret's value
masked in the file first), its outputs hashed and stored as objects, then the action entry (with
the kind's result data) is written, the ledger settled and the step's record kept — in that order,
under the cache's lock, so a ``gc`` in another clone never collects an object before the entry that
keeps it, and a step killed at any moment leaves nothing that counts as done.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from mlbuild.atomic import NO_SPACE
from mlbuild.cache import ActionResult, CorruptObjectError, MissingObjectError, OutRecord, remove
from mlbuild.errors import DiskFullError, MlbuildError
from mlbuild.exec.kinds import KindResult
from mlbuild.exec.metrics import read_metrics
from mlbuild.exec.ownership import Ownership
from mlbuild.graph import Decision, Planner, StepRecord, StepSpec, Workspace, unrestorable
from mlbuild.masking import Secrets
from mlbuild.paths import Fence
from mlbuild.sizes import size


class Outputs:
    """The outputs of the steps of one run in one workspace; used from every step's thread."""

    def __init__(
        self,
        ws: Workspace,
        planner: Planner,
        fence: Fence,
        secrets: Secrets,
        note: Callable[[str, str], None],
    ) -> None:
        self.ws = ws
        self.planner = planner
        self.fence = fence  # re-checks each path just before it is written
        self.owned = Ownership(ws)  # removes only outputs mlbuild made or can restore
        self.secrets = secrets
        self.note = note  # (step, text): something mlbuild does for a step

    def prepare(self, spec: StepSpec) -> None:
        """Make ``spec``'s outputs ready to be written: checked, claimed (on disk before anything
        runs), removed unless persistent, their folders made."""
        self.may_replace(spec, [o.path for o in spec.outs if not o.persist])
        self.owned.claim(o.path for o in spec.outs)
        for out in spec.outs:
            target = self.fence.target(out.path)
            if not out.persist:
                remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)

    def may_replace(self, spec: StepSpec, paths: list[str]) -> None:
        """Raise unless every output in ``paths`` may be written now: inside the fence (checked
        again, as the filesystem may have changed since ``plan``) and, if it exists, made by
        mlbuild or recoverable. All are checked before anything is removed."""
        declared = {o.path for o in spec.outs}
        for path in paths:
            if path not in declared:  # an action entry read back from a shared cache
                raise MlbuildError(
                    f"the cached result of step '{spec.name}' names '{path}', which is not one "
                    "of its outputs; run it again with --force"
                )
            self.fence.target(path)
            self.owned.check_removable(path)

    def restore(self, spec: StepSpec, decision: Decision) -> str | None:
        """Restore the cached outputs of ``decision``; if one cannot be (missing, or bad and now
        in quarantine), why the step must run instead."""
        assert decision.result is not None and decision.fingerprint is not None
        result = decision.result
        restoring = {p: r.digest for p, r in result.outs.items() if r.cached}
        self.may_replace(spec, list(restoring))
        with self.ws.cache.writing(self._waiting(spec)):
            self.owned.claim(restoring)
            for path, record in result.outs.items():
                if not record.cached:
                    continue
                try:
                    self.ws.cache.objects.restore(
                        record.digest, self.fence.target(path), record.size, fence=self.fence
                    )
                except (MissingObjectError, CorruptObjectError) as exc:
                    self.note(spec.name, f"cannot restore {path}: {exc.message}")
                    return unrestorable(path, exc)
            self.owned.settle(restoring)
            self.ws.cache.actions.touch(decision.fingerprint)
            self.remember(spec, decision, result, "restored")
        return None

    def commit(
        self, spec: StepSpec, decision: Decision, duration: float, done: KindResult
    ) -> ActionResult:
        """Store the outputs, then the entry, then the step record, under the cache's lock."""
        assert decision.fingerprint is not None
        with self.ws.cache.writing(self._waiting(spec)):
            action = self._store(spec, duration, done)
            versioned = [out.path for out in spec.outs if out.dvc]
            if versioned:
                self.note(spec.name, f"adding {', '.join(versioned)} to DVC")
                self.planner.data.adapter().add(versioned)
            self.owned.settle({path: record.digest for path, record in action.outs.items()})
            self.ws.cache.actions.put(decision.fingerprint, action)
            self.remember(spec, decision, action, "ran")
        return action

    def remember(self, spec: StepSpec, decision: Decision, result: ActionResult, how: str) -> None:
        """Record what the workspace now holds for ``spec``: when and how long it took to make."""
        assert decision.fingerprint is not None and decision.components is not None
        record = StepRecord(
            spec.name,
            decision.fingerprint,
            decision.components,
            result.created,
            result.duration,
            how,
        )
        self.ws.records.put(record, self.planner.manifests(spec))

    def _waiting(self, spec: StepSpec) -> Callable[[str], None]:
        return lambda text: self.note(spec.name, text)

    def _store(self, spec: StepSpec, duration: float, done: KindResult) -> ActionResult:
        """Read the step's metrics, hash its outputs, put them in the object store."""
        metrics = {**done.metrics, **self._metrics(spec)}  # first: masking rewrites a file
        outs: dict[str, OutRecord] = {}
        for out in spec.outs:
            self._check_links(out.path)
            try:
                digest = self.ws.cache.hasher.digest(out.path)
            except OSError as exc:
                raise MlbuildError(f"cannot read output {out.path}: {exc.strerror}") from None
            if digest is None:
                raise MlbuildError(
                    f"step '{spec.name}' finished but did not create its declared output "
                    f"'{out.path}'; fix the command or the outs list"
                )
            if out.cache:
                try:
                    self.ws.cache.objects.put(self.ws.root / out.path, digest)
                except DiskFullError as exc:
                    raise MlbuildError(f"cannot store output {out.path}: {exc.message}") from None
                except OSError as exc:
                    need = (
                        f" (needed {size(digest.size)} at {self.ws.cache.root})"
                        if exc.errno in NO_SPACE
                        else ""
                    )
                    raise MlbuildError(
                        f"cannot store output {out.path}: {exc.strerror}{need}"
                    ) from None
            outs[out.path] = OutRecord(digest.value, digest.size, out.cache)
        data = self.secrets.data(done.data)  # a kind should never put one there: masked anyway
        return ActionResult(spec.name, outs, metrics, duration, time.time(), data)

    def _check_links(self, path: str) -> None:
        """Refuse an output that is, or holds, a symlink leading out of the workspace: storing
        follows links, so the bytes of a file outside (``/etc/shadow``) would enter the cache, be
        shared with every clone and come back from a restore as a plain file."""
        self.fence.target(path)  # the output itself, and the folders above it
        top = self.ws.root / path
        if top.is_symlink() or not top.is_dir():
            return
        real_root = os.path.realpath(self.ws.root)
        for folder, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                link = os.path.join(folder, name)
                if not os.path.islink(link):
                    continue
                real = os.path.realpath(link)
                if not real.startswith(real_root + os.sep):
                    shown = os.path.relpath(link, self.ws.root)
                    raise MlbuildError(
                        f"output '{shown}' is a symlink to {real}, outside the workspace; "
                        "mlbuild stores only what lies inside it: copy the file instead of "
                        "linking it"
                    )

    def _metrics(self, spec: StepSpec) -> dict[str, Any]:
        """The step's metrics; a secret's value in a metrics file is masked, and said so."""
        metrics: dict[str, Any] = {}
        for path in spec.metrics:
            values, note = read_metrics(self.ws.root / path, path, self.secrets)
            if note is not None:
                self.note(spec.name, note)
            metrics.update(values)
        return metrics
