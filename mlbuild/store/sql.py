"""The run store on SQLAlchemy Core: one implementation for SQLite files and PostgreSQL servers.

Runs live in ``runs`` (params, metrics and data versions as JSON) with one row per param leaf,
metric and tag in side tables that filters and sorts use through their indexes. Model versions and
alias moves are in :mod:`mlbuild.store.registry`.
"""

from __future__ import annotations

import difflib
import json
import time
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from mlbuild.errors import NotFoundError, StoreError
from mlbuild.nested import leaves
from mlbuild.store import registry
from mlbuild.store.engine import display_url, make_engine, transact
from mlbuild.store.listing import count_runs, find_runs
from mlbuild.store.liveness import is_gone
from mlbuild.store.query import RunQuery, as_number, as_text
from mlbuild.store.records import (
    AliasChange,
    Artifact,
    GitInfo,
    ModelVersion,
    RunRecord,
    RunStatus,
    StepEntry,
)
from mlbuild.store.schema import (
    LATEST,
    current_version,
    migrate,
    run_artifacts,
    run_metrics,
    run_params,
    run_steps,
    run_tags,
    runs,
)

STALE_AFTER = 120.0  # seconds without a heartbeat before a run counts as dead
MIN_PREFIX = 4


class SqlRunStore:
    """A :class:`~mlbuild.store.base.RunStore` in the database at ``url``."""

    def __init__(self, url: str, *, stale_after: float = STALE_AFTER) -> None:
        self.url = display_url(url)
        self.stale_after = stale_after
        self.engine = make_engine(url)
        self._open()

    def _open(self) -> None:
        if self._read(current_version) != LATEST:
            self._write(migrate)

    def close(self) -> None:
        self.engine.dispose()

    def _read(self, work: Any) -> Any:
        return transact(self.engine, work, write=False)

    def _write(self, work: Any) -> Any:
        return transact(self.engine, work, write=True)

    # ---- runs -------------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> None:
        def work(conn: sa.Connection) -> None:
            conn.execute(sa.insert(runs).values(**_run_row(run)))
            _insert_children(conn, run)

        try:
            self._write(work)
        except sa.exc.IntegrityError:
            raise StoreError(f"run {run.id} is already in the run store {self.url}") from None

    def heartbeat(self, run_id: str) -> None:
        self._write(
            lambda conn: conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
                .values(heartbeat=time.time())
            )
        )

    def finish_run(self, run: RunRecord) -> None:
        self._write(lambda conn: _finish(conn, run))

    def put_run(self, run: RunRecord) -> None:
        def work(conn: sa.Connection) -> None:
            if _insert_if_absent(conn, run):
                _insert_children(conn, run)
            if run.status is RunStatus.RUNNING:
                conn.execute(
                    sa.update(runs)
                    .where(
                        runs.c.id == run.id,
                        runs.c.status == RunStatus.RUNNING.value,
                        runs.c.heartbeat < (run.heartbeat or run.started),
                    )
                    .values(heartbeat=run.heartbeat or run.started)
                )
            else:
                _finish(conn, run, unless_done=True)

        self._write(work)

    def get_run(self, run_id: str) -> RunRecord:
        self.reap_stale()

        def work(conn: sa.Connection) -> RunRecord:
            full = self._resolve(conn, run_id)
            row = conn.execute(sa.select(runs).where(runs.c.id == full)).one()
            steps = [
                StepEntry(r.name, r.status, r.fingerprint, r.duration, r.cache_hit)
                for r in conn.execute(
                    sa.select(run_steps)
                    .where(run_steps.c.run_id == full)
                    .order_by(run_steps.c.position)
                )
            ]
            artifacts = [
                Artifact(r.path, r.digest, r.size, r.step, r.cached)
                for r in conn.execute(
                    sa.select(run_artifacts)
                    .where(run_artifacts.c.run_id == full)
                    .order_by(run_artifacts.c.path)
                )
            ]
            tags = _tags(conn, [full]).get(full, {})
            return replace(_record(row), steps=steps, artifacts=artifacts, tags=tags)

        result: RunRecord = self._read(work)
        return result

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        self.reap_stale()

        def work(conn: sa.Connection) -> list[RunRecord]:
            rows = find_runs(conn, query)
            tags = _tags(conn, [r.id for r in rows])
            return [replace(_record(r), tags=tags.get(r.id, {})) for r in rows]

        result: list[RunRecord] = self._read(work)
        return result

    def count_runs(self, query: RunQuery | None = None) -> int:
        count: int = self._read(lambda conn: count_runs(conn, query))
        return count

    def set_tags(self, run_id: str, tags: dict[str, str], remove: list[str]) -> RunRecord:
        def work(conn: sa.Connection) -> str:
            full = self._resolve(conn, run_id)
            keys = [*tags, *remove]
            if keys:
                conn.execute(
                    sa.delete(run_tags).where(run_tags.c.run_id == full, run_tags.c.key.in_(keys))
                )
            if tags:
                conn.execute(
                    sa.insert(run_tags),
                    [{"run_id": full, "key": k, "value": v} for k, v in tags.items()],
                )
            return full

        return self.get_run(self._write(work))

    def set_notes(self, run_id: str, notes: str) -> RunRecord:
        def work(conn: sa.Connection) -> str:
            full = self._resolve(conn, run_id)
            conn.execute(sa.update(runs).where(runs.c.id == full).values(notes=notes))
            return full

        return self.get_run(self._write(work))

    def reap_stale(self) -> list[str]:
        now = time.time()
        running = self._read(
            lambda conn: conn.execute(
                sa.select(runs.c.id, runs.c.process, runs.c.heartbeat, runs.c.started).where(
                    runs.c.status == RunStatus.RUNNING.value
                )
            ).all()
        )
        dead = {
            r.id: r.heartbeat or r.started
            for r in running
            if is_gone(r.process) or now - (r.heartbeat or r.started) > self.stale_after
        }
        if not dead:
            return []

        def work(conn: sa.Connection) -> None:
            for run_id, last_seen in dead.items():
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
                    .values(status=RunStatus.INTERRUPTED.value, ended=last_seen)
                )

        self._write(work)
        return sorted(dead)

    def _resolve(self, conn: sa.Connection, run_id: str) -> str:
        """The full id of the run that ``run_id`` names (a whole id or a unique prefix)."""
        given = run_id.strip().lower()
        if len(given) < MIN_PREFIX:
            raise NotFoundError(
                f"run id {run_id!r} is too short; give at least {MIN_PREFIX} of its hex digits"
            )
        found = (
            conn.execute(
                sa.select(runs.c.id).where(runs.c.id.startswith(given, autoescape=True)).limit(6)
            )
            .scalars()
            .all()
        )
        if len(found) == 1:
            return str(found[0])
        if len(found) > 1:
            shown = ", ".join(f[:12] for f in found[:5])
            raise NotFoundError(
                f"run id {run_id!r} is ambiguous: it starts {shown}; give more of its digits"
            )
        recent = (
            conn.execute(sa.select(runs.c.id).order_by(runs.c.started.desc()).limit(2000))
            .scalars()
            .all()
        )
        close = difflib.get_close_matches(given, [r[: len(given)] for r in recent], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise NotFoundError(
            f"no run {run_id!r} in the run store {self.url}{hint} "
            "(`mlbuild runs list` shows the recent runs)"
        )

    # ---- models -------------------------------------------------------------------------------

    def register_model(
        self, name: str, run_id: str, artifacts: list[Artifact], description: str
    ) -> ModelVersion:
        run = self.get_run(run_id)
        return registry.register(self.engine, name, run, artifacts, description)

    def model_versions(self, name: str | None) -> list[ModelVersion]:
        return registry.versions(self.engine, name)

    def model_version(self, name: str, version: int) -> ModelVersion:
        return registry.version(self.engine, name, version)

    def record_image(self, name: str, version: int, repository: str, digest: str) -> None:
        registry.record_image(self.engine, name, version, repository, digest)

    def set_alias(self, name: str, alias: str, version: int | None) -> AliasChange:
        return registry.set_alias(self.engine, name, alias, version)

    def rollback_alias(self, name: str, alias: str) -> AliasChange:
        return registry.rollback(self.engine, name, alias)

    def aliases(self, name: str) -> dict[str, int]:
        return registry.aliases(self.engine, name)

    def alias_history(self, name: str) -> list[AliasChange]:
        return registry.history(self.engine, name)


def _insert_if_absent(conn: sa.Connection, run: RunRecord) -> bool:
    """Insert ``run``'s row unless its id is there; whether it was inserted. On PostgreSQL a
    concurrent insert of the same id makes this wait for that transaction, then do nothing."""
    dialect: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    row = {**_run_row(run), "status": RunStatus.RUNNING.value, "ended": None}
    statement = dialect.insert(runs).values(**row).on_conflict_do_nothing(index_elements=["id"])
    return bool(conn.execute(statement).rowcount)


def _insert_children(conn: sa.Connection, run: RunRecord) -> None:
    """The rows a new run has besides its own: params and metrics by leaf, tags."""
    _insert_leaves(conn, run_params, run.id, leaves(run.params))
    _insert_leaves(conn, run_metrics, run.id, run.metrics)
    if run.tags:
        conn.execute(
            sa.insert(run_tags),
            [{"run_id": run.id, "key": k, "value": v} for k, v in run.tags.items()],
        )


def _finish(conn: sa.Connection, run: RunRecord, *, unless_done: bool = False) -> None:
    """Replace ``run``'s final state: status, end, metrics, steps and artifacts.

    With ``unless_done``, a run already stored with this status and end is left as it is, so
    applying the same record twice changes nothing (tags or notes edited since stay). The
    ``UPDATE`` comes first: it locks the run's row, so concurrent writers of one run take turns.
    """
    row = _run_row(run)
    del row["id"]
    update = sa.update(runs).where(runs.c.id == run.id)
    if unless_done:
        update = update.where(
            sa.or_(runs.c.status != run.status.value, runs.c.ended.is_distinct_from(run.ended))
        )
    if not conn.execute(update.values(**row)).rowcount and unless_done:
        return
    for table in (run_metrics, run_steps, run_artifacts):
        conn.execute(sa.delete(table).where(table.c.run_id == run.id))
    _insert_leaves(conn, run_metrics, run.id, run.metrics)
    if run.steps:
        conn.execute(
            sa.insert(run_steps),
            [
                {
                    "run_id": run.id,
                    "position": i,
                    "name": s.name,
                    "status": s.status,
                    "fingerprint": s.fingerprint,
                    "duration": s.duration,
                    "cache_hit": s.cache_hit,
                }
                for i, s in enumerate(run.steps)
            ],
        )
    if run.artifacts:
        conn.execute(
            sa.insert(run_artifacts),
            [
                {
                    "run_id": run.id,
                    "path": a.path,
                    "digest": a.digest,
                    "size": a.size,
                    "step": a.step,
                    "cached": a.cached,
                }
                for a in run.artifacts
            ],
        )


def _run_row(run: RunRecord) -> dict[str, Any]:
    git = run.git
    return {
        "id": run.id,
        "kind": run.kind,
        "recipe_name": run.recipe_name,
        "recipe_hash": run.recipe_hash,
        "git_commit": git.commit if git else None,
        "git_branch": git.branch if git else None,
        "git_dirty": git.dirty if git else None,
        "git_diff_hash": git.diff_hash if git else None,
        "user_name": run.user,
        "host": run.host,
        "pid": run.pid,
        "process": run.process,
        "python": run.python,
        "lock_hash": run.lock_hash,
        "started": run.started,
        "ended": run.ended,
        "heartbeat": run.heartbeat or run.started,
        "status": run.status.value,
        "overrides": json.dumps(run.overrides),
        "params": json.dumps(run.params, sort_keys=True),
        "metrics": json.dumps(run.metrics, sort_keys=True),
        "data_versions": json.dumps(run.data_versions, sort_keys=True),
        "notes": run.notes,
        "executed": any(not step.cache_hit for step in run.steps),
    }


def _record(row: sa.Row[Any]) -> RunRecord:
    git = (
        GitInfo(row.git_commit, row.git_branch, bool(row.git_dirty), row.git_diff_hash)
        if row.git_commit
        else None
    )
    return RunRecord(
        id=row.id,
        kind=row.kind,
        recipe_name=row.recipe_name,
        recipe_hash=row.recipe_hash,
        git=git,
        user=row.user_name,
        host=row.host,
        pid=row.pid,
        process=row.process,
        python=row.python,
        lock_hash=row.lock_hash,
        started=row.started,
        status=RunStatus(row.status),
        ended=row.ended,
        heartbeat=row.heartbeat,
        overrides=json.loads(row.overrides),
        params=json.loads(row.params),
        metrics=json.loads(row.metrics),
        data_versions=json.loads(row.data_versions),
        notes=row.notes,
    )


def _insert_leaves(
    conn: sa.Connection, table: sa.Table, run_id: str, values: dict[str, Any]
) -> None:
    if values:
        conn.execute(
            sa.insert(table),
            [
                {"run_id": run_id, "key": k, "value_text": as_text(v), "value_num": as_number(v)}
                for k, v in values.items()
            ],
        )


def _tags(conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(run_tags).where(run_tags.c.run_id.in_(ids[start : start + 500]))
        )
        for row in rows:
            found.setdefault(row.run_id, {})[row.key] = row.value
    return {k: dict(sorted(v.items())) for k, v in found.items()}
