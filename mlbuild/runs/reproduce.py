"""Reproduce a recorded run: check that the workspace is in the recorded state, re-run the
run's steps for real (``--force``: a cache hit proves nothing), and compare what came out.

::

    recorded run ─▶ checks: commit, uncommitted diff, recipe, lock file, params, data versions
                 ─▶ re-run its steps with its overrides, forced, recorded as a new run
                 ─▶ compare each cached artifact's content hash and each metric

Outputs declared ``cache: false`` or ``persist: true`` are not compared, and the result names
them: the first are the way to declare an output that differs on every run (a log, a tracking
database), the second an output a step updates in place (a checkpoint), which depends on what
the workspace held before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from mlbuild.cache import hash_bytes
from mlbuild.errors import ReproduceError
from mlbuild.exec import Reporter
from mlbuild.graph import Graph, Workspace
from mlbuild.runs.record import RecordedRun, new_record, recorded_run
from mlbuild.store import RunRecord, RunStore


@dataclass(frozen=True)
class Comparison:
    """One thing recorded and found again: an input check, an artifact or a metric."""

    kind: str  # "input", "artifact", "metric"
    name: str
    recorded: str
    now: str

    @property
    def matches(self) -> bool:
        return self.recorded == self.now


@dataclass(frozen=True)
class Skipped:
    """An output of the run that is not compared, and why (``cache: false``, ``persist: true``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Reproduction:
    original: RunRecord
    checks: list[Comparison]
    rerun: RecordedRun
    outcome: list[Comparison]
    skipped: list[Skipped]

    @property
    def matches(self) -> bool:
        return all(c.matches for c in self.outcome)


def reproduce(
    ws: Workspace,
    store: RunStore,
    run_id: str,
    *,
    jobs: int,
    reporter: Reporter,
    anyway: bool,
    tolerance: float = 0.0,
) -> Reproduction:
    """Re-run ``run_id`` in ``ws``. Raises :class:`ReproduceError` when the workspace is not in the
    recorded state (unless ``anyway``); the result says whether outputs and metrics match."""
    original = store.get_run(run_id)
    graph = ws.graph(original.overrides)
    checks = input_checks(ws, original, new_record(ws, graph, kind="check", tags={}, notes=""))
    differ = [c for c in checks if not c.matches]
    if differ and not anyway:
        lines = "; ".join(f"{c.name} was {c.recorded}, is {c.now}" for c in differ)
        fix = (
            f" (`git checkout {original.git.commit[:12]}`)"
            if original.git and any(c.name == "git commit" for c in differ)
            else ""
        )
        raise ReproduceError(
            f"the workspace is not in the state run {original.id[:8]} recorded: {lines}; "
            f"restore that state{fix}, or pass --anyway to re-run regardless"
        )
    targets = [s.name for s in original.steps if s.name in graph.steps]
    rerun = recorded_run(
        ws,
        store,
        graph,
        targets=targets,
        force=True,
        jobs=jobs,
        reporter=reporter,
        kind="reproduce",
        tags={"reproduces": original.id},
    )
    skipped = uncompared(original, graph)
    ignore = {s.path for s in skipped}
    outcome = compare_outputs(original, rerun.record, tolerance, ignore=ignore)
    return Reproduction(original, checks, rerun, outcome, skipped)


def uncompared(original: RunRecord, graph: Graph) -> list[Skipped]:
    """The recorded artifacts that are not compared: declared ``cache: false`` (or recorded as
    not cached) or ``persist: true``."""
    declared = {out.path: out for step in graph.steps.values() for out in step.outs}
    skipped = []
    for artifact in original.artifacts:
        out = declared.get(artifact.path)
        if not artifact.cached or (out is not None and not out.cache):
            skipped.append(Skipped(artifact.path, "cache: false"))
        elif out is not None and out.persist:
            skipped.append(Skipped(artifact.path, "persist: true"))
    return skipped


def input_checks(ws: Workspace, original: RunRecord, now: RunRecord) -> list[Comparison]:
    """The recorded inputs of ``original`` against those a run would have ``now``."""
    old_git, new_git = original.git, now.git
    checks = [
        Comparison(
            "input",
            "git commit",
            old_git.commit[:12] if old_git else "none",
            new_git.commit[:12] if new_git else "none",
        ),
        Comparison(
            "input",
            "uncommitted changes",
            _changes(original),
            _changes(now),
        ),
        Comparison("input", "recipe", _short(original.recipe_hash), _short(now.recipe_hash)),
        Comparison("input", "environment lock", _short(original.lock_hash), _short(now.lock_hash)),
        Comparison("input", "params", _params_hash(original), _params_hash(now)),
    ]
    for path in sorted({*original.data_versions, *now.data_versions}):
        checks.append(
            Comparison(
                "input",
                f"data {path}",
                original.data_versions.get(path, "absent"),
                now.data_versions.get(path, "absent"),
            )
        )
    return checks


def compare_outputs(
    original: RunRecord, new: RunRecord, tolerance: float, *, ignore: set[str] | None = None
) -> list[Comparison]:
    """Artifacts by content hash (but those in ``ignore``), metrics by value (floats within
    ``tolerance``, relative)."""
    found: list[Comparison] = []
    now_artifacts = {a.path: a.digest for a in new.artifacts}
    for artifact in original.artifacts:
        if artifact.path in (ignore or set()):
            continue
        found.append(
            Comparison(
                "artifact",
                artifact.path,
                _short(artifact.digest),
                _short(now_artifacts.get(artifact.path)),
            )
        )
    for key in sorted(original.metrics):
        old, value = original.metrics[key], new.metrics.get(key)
        same = _close(old, value, tolerance)
        found.append(Comparison("metric", key, repr(old), repr(old) if same else repr(value)))
    return found


def _close(old: object, new: object, tolerance: float) -> bool:
    if isinstance(old, float) and isinstance(new, int | float) and not isinstance(new, bool):
        return math.isclose(old, new, rel_tol=tolerance, abs_tol=0.0) or old == new
    return old == new


def _changes(run: RunRecord) -> str:
    if run.git is None or not run.git.dirty:
        return "none"
    return f"diff {_short(run.git.diff_hash)}"


def _params_hash(run: RunRecord) -> str:
    return _short(hash_bytes(json.dumps(run.params, sort_keys=True, default=str).encode()))


def _short(digest: str | None) -> str:
    return digest[:12] if digest else "none"
