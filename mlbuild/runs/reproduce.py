"""Reproduce a recorded run: check that the workspace is in the recorded state, re-run the
run's steps for real (``--force``: a cache hit proves nothing), and compare what came out.

::

    recorded run ─▶ checks: commit, uncommitted diff, recipe, lock file, params, data versions
                 ─▶ re-run its steps with its overrides, forced, recorded as a new run
                 ─▶ compare each artifact's content hash and each metric
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from mlbuild.cache import hash_bytes
from mlbuild.errors import ReproduceError
from mlbuild.exec import Reporter
from mlbuild.graph import Workspace
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
class Reproduction:
    original: RunRecord
    checks: list[Comparison]
    rerun: RecordedRun
    outcome: list[Comparison]

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
    return Reproduction(original, checks, rerun, compare_outputs(original, rerun.record, tolerance))


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


def compare_outputs(original: RunRecord, new: RunRecord, tolerance: float) -> list[Comparison]:
    """Artifacts by content hash, metrics by value (floats within ``tolerance``, relative)."""
    found: list[Comparison] = []
    now_artifacts = {a.path: a.digest for a in new.artifacts}
    for artifact in original.artifacts:
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
