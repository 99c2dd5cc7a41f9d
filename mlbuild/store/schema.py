"""The run store's tables and the migrations that build them, run when a store is opened.

``mlbuild_schema`` holds the version a store is at. Opening a store checks it (one cheap read);
if it is behind, the missing migrations run in one transaction under a lock (SQLite's write
lock, PostgreSQL's advisory lock), so many processes opening a new store at once migrate it once.
A store newer than this mlbuild is refused rather than misread.

Migrations only ever add: a released version is never edited, a change is a new version.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from mlbuild.errors import StoreError
from mlbuild.extras import DISTRIBUTION

metadata = sa.MetaData()

schema_table = sa.Table(
    "mlbuild_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("recipe_name", sa.String(200), nullable=False),
    sa.Column("recipe_hash", sa.String(80)),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("git_branch", sa.String(255)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("git_diff_hash", sa.String(80)),
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("process", sa.String(255), nullable=False),
    sa.Column("python", sa.String(32), nullable=False),
    sa.Column("lock_hash", sa.String(80)),
    sa.Column("started", sa.Double, nullable=False),
    sa.Column("ended", sa.Double),
    sa.Column("heartbeat", sa.Double),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("overrides", sa.Text, nullable=False),  # JSON
    sa.Column("params", sa.Text, nullable=False),  # JSON, nested as composed
    sa.Column("metrics", sa.Text, nullable=False),  # JSON, flat
    sa.Column("data_versions", sa.Text, nullable=False),  # JSON
    sa.Column("notes", sa.Text, nullable=False),
    # some step ran (not a cache hit): `runs list` leaves out finished runs without one (v3)
    sa.Column("executed", sa.Boolean),
    sa.Index("ix_runs_started", "started"),
    sa.Index("ix_runs_status", "status"),
    sa.Index("ix_runs_git_commit", "git_commit"),
)


def _run_id() -> sa.Column[str]:
    return sa.Column(
        "run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )


# params and metrics again, one row per leaf, so that runs can be filtered and sorted by them
run_params = sa.Table(
    "run_params",
    metadata,
    _run_id(),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value_text", sa.Text, nullable=False),
    sa.Column("value_num", sa.Double),
    sa.Index("ix_run_params_key_num", "key", "value_num"),
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    _run_id(),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value_text", sa.Text, nullable=False),
    sa.Column("value_num", sa.Double),
    sa.Index("ix_run_metrics_key_num", "key", "value_num"),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    _run_id(),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fingerprint", sa.String(80)),
    sa.Column("duration", sa.Double, nullable=False),
    sa.Column("cache_hit", sa.Boolean, nullable=False),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    _run_id(),
    sa.Column("path", sa.String(1000), primary_key=True),
    sa.Column("digest", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("step", sa.String(200), nullable=False),
    sa.Column("cached", sa.Boolean, nullable=False),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    _run_id(),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_run_tags_key", "key"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("artifacts", sa.Text, nullable=False),  # JSON
    sa.Column("provenance", sa.Text, nullable=False),  # JSON
)

model_alias_changes = sa.Table(
    "model_alias_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("alias", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer),  # None: the alias was removed
    sa.Column("changed", sa.Double, nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Index("ix_model_alias_changes_name", "name", "alias", "id"),
)


# where each model version was published (`mlbuild publish`): an image in a registry, by digest
model_images = sa.Table(
    "model_images",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("repository", sa.String(500), primary_key=True),  # registry/image
    sa.Column("digest", sa.String(100), nullable=False),  # sha256:…
    sa.Column("published", sa.Double, nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False),
)


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def migrate(conn: sa.Connection) -> None:
        for table in tables:
            table.create(conn)

    return migrate


def _add_executed(conn: sa.Connection) -> None:
    """v3: ``runs.executed``, filled in from the steps of the runs already recorded. A store
    created since v3 got the column from migration 1 (which creates the table as it is now)."""
    if "executed" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}:
        conn.execute(sa.text("ALTER TABLE runs ADD COLUMN executed BOOLEAN"))
    ran = sa.exists().where(run_steps.c.run_id == runs.c.id, run_steps.c.cache_hit.is_(False))
    conn.execute(sa.update(runs).where(runs.c.executed.is_(None)).values(executed=ran))


# version → the migration that brings a store from the version before to it
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {
    1: _create(runs, run_params, run_metrics, run_steps, run_artifacts, run_tags),
    2: _create(model_versions, model_alias_changes),
    3: _add_executed,
    4: _create(model_images),
}
LATEST = max(MIGRATIONS)
_ADVISORY_LOCK = 0x6D6C6275  # "mlbu": serialises migrations on a shared PostgreSQL store


def current_version(conn: sa.Connection) -> int:
    """The schema version of the store ``conn`` is connected to; 0 for an empty database."""
    if not conn.dialect.has_table(conn, schema_table.name):
        return 0
    version = conn.execute(sa.select(schema_table.c.version)).scalar()
    return int(version or 0)


def migrate(conn: sa.Connection, target: int = LATEST) -> int:
    """Bring the store up to ``target`` inside the caller's write transaction; returns the
    version it was at. Raises StoreError for a store newer than this mlbuild knows."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK)))
    found = current_version(conn)
    if found > LATEST:
        raise StoreError(
            f"the run store is at schema version {found}, newer than this mlbuild understands "
            f"({LATEST}); upgrade mlbuild (`pip install -U {DISTRIBUTION}`)"
        )
    if found == 0:
        schema_table.create(conn)
        conn.execute(sa.insert(schema_table).values(id=1, version=0))
    for version in range(found + 1, target + 1):
        MIGRATIONS[version](conn)
        conn.execute(sa.update(schema_table).values(version=version))
    return found
