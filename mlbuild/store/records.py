"""What the run store holds: run records, their steps and artifacts, and model versions.

Plain frozen dataclasses with JSON-friendly fields, so the CLI can print them and a record can be
built without loading SQLAlchemy.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class GitInfo:
    """The code revision a run started from. ``diff_hash`` identifies the uncommitted changes."""

    commit: str
    branch: str | None
    dirty: bool
    diff_hash: str | None = None


@dataclass(frozen=True)
class StepEntry:
    """One step of a run: how it ended, its fingerprint, how long it took, cache hit or not."""

    name: str
    status: str  # an mlbuild.exec Status value: ran, cached, restored, failed, skipped, …
    fingerprint: str | None
    duration: float
    cache_hit: bool


@dataclass(frozen=True)
class Artifact:
    """One output of a run, addressed by content in the cache (``cached`` is false for outputs
    declared ``cache: false``, which only the workspace holds)."""

    path: str
    digest: str
    size: int
    step: str
    cached: bool = True


@dataclass(frozen=True)
class RunRecord:
    """Everything recorded about one run. Secrets never enter it.

    ``params`` are the resolved params (nested, as composed), ``overrides`` the command-line
    overrides that produced them; ``metrics`` are the steps' metrics, flattened to dotted keys;
    ``data_versions`` maps each dataset's name to its version: kind, hash, path, and the source
    repository, revision, commit and DVC remote where there are any.
    """

    id: str
    kind: str
    recipe_name: str
    recipe_hash: str | None
    git: GitInfo | None
    user: str
    host: str
    pid: int
    python: str
    lock_hash: str | None
    started: float
    status: RunStatus = RunStatus.RUNNING
    process: str = ""  # which process records the run, for stale detection (see liveness.py)
    ended: float | None = None
    heartbeat: float | None = None
    overrides: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_versions: dict[str, str] = field(default_factory=dict)
    steps: list[StepEntry] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    notes: str = ""

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    def to_json(self) -> dict[str, Any]:
        # asdict deep-copies every step and artifact entry, a third of a no-op run of 2,000
        # steps; their fields are flat (str, number, bool), so a copy of each dict is the same
        data = asdict(replace(self, steps=[], artifacts=[]))
        data["steps"] = [dict(vars(step)) for step in self.steps]
        data["artifacts"] = [dict(vars(artifact)) for artifact in self.artifacts]
        data["status"] = self.status.value
        data["duration"] = self.duration
        return data


@dataclass(frozen=True)
class ModelVersion:
    """An immutable, numbered version of a named model: the artifacts of one run."""

    name: str
    version: int
    run_id: str
    created: float
    user: str
    description: str
    artifacts: list[Artifact]
    provenance: dict[str, Any]  # the run's commit, recipe hash, params, metrics, data versions
    # where `mlbuild publish` pushed it: [{"repository": "registry/image", "digest": "sha256:…"}]
    images: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias (``production`` → version 3); ``version`` is None when removed."""

    name: str
    alias: str
    version: int | None
    changed: float
    user: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
