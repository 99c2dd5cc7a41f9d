"""Model versions and aliases: immutable numbered versions of a run's artifacts, and movable
names (``staging``, ``production``) whose every move is kept for rollbacks."""

from __future__ import annotations

import getpass
import json
import re
import time
from typing import Any

import sqlalchemy as sa

from mlbuild.errors import NotFoundError, UsageError
from mlbuild.store.engine import transact
from mlbuild.store.records import AliasChange, Artifact, ModelVersion, RunRecord, RunStatus
from mlbuild.store.schema import model_alias_changes, model_images, model_versions

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def register(
    engine: sa.Engine, name: str, run: RunRecord, artifacts: list[Artifact], description: str
) -> ModelVersion:
    _check_name(name, "model name")
    if run.status is not RunStatus.FINISHED:
        raise UsageError(
            f"run {run.id[:8]} is {run.status.value}; only a finished run can be registered"
        )
    if not artifacts:
        raise UsageError(f"run {run.id[:8]} recorded no artifacts; there is nothing to register")
    provenance = {
        "run_id": run.id,
        "recipe_name": run.recipe_name,
        "recipe_hash": run.recipe_hash,
        "git": None if run.git is None else run.git.__dict__,
        "overrides": run.overrides,
        "params": run.params,
        "metrics": run.metrics,
        "data_versions": run.data_versions,
        "lock_hash": run.lock_hash,
        "python": run.python,
    }
    user = _user()

    def work(conn: sa.Connection) -> ModelVersion:
        latest = conn.execute(
            sa.select(sa.func.max(model_versions.c.version)).where(model_versions.c.name == name)
        ).scalar()
        version = ModelVersion(
            name, (latest or 0) + 1, run.id, time.time(), user, description, artifacts, provenance
        )
        conn.execute(
            sa.insert(model_versions).values(
                name=name,
                version=version.version,
                run_id=run.id,
                created=version.created,
                user_name=user,
                description=description,
                artifacts=json.dumps([a.__dict__ for a in artifacts]),
                provenance=json.dumps(provenance, sort_keys=True),
            )
        )
        return version

    # two writers may read the same latest version on PostgreSQL; the loser's insert violates the
    # primary key and it takes the next number
    for _ in range(50):
        try:
            result: ModelVersion = transact(engine, work, write=True)
            return result
        except sa.exc.IntegrityError:
            continue
    raise UsageError(f"could not allocate a version of model '{name}' after 50 attempts")


def versions(engine: sa.Engine, name: str | None) -> list[ModelVersion]:
    stmt = sa.select(model_versions).order_by(model_versions.c.name, model_versions.c.version)
    if name is not None:
        stmt = stmt.where(model_versions.c.name == name)
    rows = transact(engine, lambda conn: conn.execute(stmt).all(), write=False)
    if name is not None and not rows:
        raise NotFoundError(
            f"no model named '{name}' in the run store{_suggest(engine, name)}; "
            "register one with `mlbuild model register RUN --name NAME`"
        )
    published: dict[tuple[str, int], list[dict[str, str]]] = {}
    stmt_images = sa.select(model_images).order_by(model_images.c.published)
    if name is not None:
        stmt_images = stmt_images.where(model_images.c.name == name)
    for row in transact(engine, lambda conn: conn.execute(stmt_images).all(), write=False):
        published.setdefault((row.name, row.version), []).append(
            {"repository": row.repository, "digest": row.digest}
        )
    return [_version(r, published.get((r.name, r.version), [])) for r in rows]


def record_image(engine: sa.Engine, name: str, number: int, repository: str, digest: str) -> None:
    """Note that version ``number`` of ``name`` is the image ``repository@digest`` (replacing
    what was noted for that repository: a registry wiped and published to again)."""
    version(engine, name, number)

    def work(conn: sa.Connection) -> None:
        key = (
            (model_images.c.name == name)
            & (model_images.c.version == number)
            & (model_images.c.repository == repository)
        )
        conn.execute(sa.delete(model_images).where(key))
        conn.execute(
            sa.insert(model_images).values(
                name=name,
                version=number,
                repository=repository,
                digest=digest,
                published=time.time(),
                user_name=_user(),
            )
        )

    transact(engine, work, write=True)


def version(engine: sa.Engine, name: str, number: int) -> ModelVersion:
    known = versions(engine, name)
    for found in known:
        if found.version == number:
            return found
    raise NotFoundError(
        f"model '{name}' has no version {number}; it has versions "
        f"{', '.join(str(v.version) for v in known)}"
    )


def set_alias(engine: sa.Engine, name: str, alias: str, number: int | None) -> AliasChange:
    _check_name(alias, "alias")
    if number is not None:
        version(engine, name, number)
    elif alias not in aliases(engine, name):
        raise NotFoundError(f"model '{name}' has no alias '{alias}'{_alias_hint(engine, name)}")
    change = AliasChange(name, alias, number, time.time(), _user())

    def work(conn: sa.Connection) -> None:
        conn.execute(
            sa.insert(model_alias_changes).values(
                name=name,
                alias=alias,
                version=number,
                changed=change.changed,
                user_name=change.user,
            )
        )

    transact(engine, work, write=True)
    return change


def rollback(engine: sa.Engine, name: str, alias: str) -> AliasChange:
    moves = [c for c in history(engine, name) if c.alias == alias]
    if not moves:
        raise NotFoundError(f"model '{name}' has no alias '{alias}'{_alias_hint(engine, name)}")
    if len(moves) < 2:
        raise UsageError(
            f"alias '{alias}' of model '{name}' has pointed only at version {moves[0].version}; "
            "there is no earlier version to roll back to"
        )
    return set_alias(engine, name, alias, moves[-2].version)


def aliases(engine: sa.Engine, name: str) -> dict[str, int]:
    current: dict[str, int | None] = {}
    for change in history(engine, name):
        current[change.alias] = change.version
    return {alias: v for alias, v in sorted(current.items()) if v is not None}


def history(engine: sa.Engine, name: str) -> list[AliasChange]:
    stmt = (
        sa.select(model_alias_changes)
        .where(model_alias_changes.c.name == name)
        .order_by(model_alias_changes.c.id)
    )
    rows = transact(engine, lambda conn: conn.execute(stmt).all(), write=False)
    return [AliasChange(r.name, r.alias, r.version, r.changed, r.user_name) for r in rows]


def _version(row: Any, images: list[dict[str, str]]) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        run_id=row.run_id,
        created=row.created,
        user=row.user_name,
        description=row.description,
        artifacts=[Artifact(**a) for a in json.loads(row.artifacts)],
        provenance=json.loads(row.provenance),
        images=images,
    )


def _check_name(name: str, what: str) -> None:
    if not _NAME.match(name):
        raise UsageError(
            f"{what} {name!r} is not valid: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )


def _suggest(engine: sa.Engine, name: str) -> str:
    import difflib

    names = transact(
        engine,
        lambda conn: conn.execute(sa.select(model_versions.c.name).distinct()).scalars().all(),
        write=False,
    )
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _alias_hint(engine: sa.Engine, name: str) -> str:
    current = aliases(engine, name)
    return f"; its aliases: {', '.join(current)}" if current else "; it has no aliases yet"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
