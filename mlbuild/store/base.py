"""The run store's contract. Every backend keeps it; ``tests/store`` checks it on each one.

A :class:`RunStore` is opened by :func:`mlbuild.store.open_store` with a URL: a SQLite file (the
default, ``.mlbuild/runs.db``) or a PostgreSQL server shared by a team. Opening brings the schema
up to date (migrations run once, under a lock, whoever opens first).

Concurrency: any number of processes, on any number of machines for a server backend, may write
at once; every call is one transaction and none is lost. One store object may be shared by the
threads of one process (the run recorder's heartbeat thread does).

Runs: :meth:`start_run` inserts a run with status ``running``; :meth:`heartbeat` says it is
still alive; :meth:`finish_run` replaces its status, end time, metrics, steps and artifacts in one
transaction. :meth:`put_run` stores a run recorded elsewhere (the journal, see ``journal.py``)
whatever the store holds of it yet; it is idempotent, so any number of processes moving the same
journal at once, on any number of machines, record each run once and none fails. A run whose
process died (same host and its pid gone, or no heartbeat for ``stale_after`` seconds) is marked
``interrupted`` by :meth:`reap_stale`, which every read calls first — so no run stays
``running`` forever. Only tags and notes change after a run ends.

Run ids are 32 hex digits; every method that takes one also takes a unique prefix of at least
four, and raises :class:`~mlbuild.errors.NotFoundError` (with the nearest ids) for one it does
not know.

Models: :meth:`register_model` gives a name's next version (1, 2, …; never reused, never
changed). An alias (``staging``, ``production``) points at one version; every move is kept, so
:meth:`rollback_alias` puts it back where it was before the last move.
"""

from __future__ import annotations

from typing import Protocol

from mlbuild.store.query import RunQuery
from mlbuild.store.records import AliasChange, Artifact, ModelVersion, RunRecord


class RunWriter(Protocol):
    """What recording a run needs: the writing half of :class:`RunStore`."""

    def start_run(self, run: RunRecord) -> None:
        """Insert ``run`` (status ``running``); its id must be new."""
        ...

    def heartbeat(self, run_id: str) -> None:
        """Mark the running ``run_id`` alive now."""
        ...

    def finish_run(self, run: RunRecord) -> None:
        """Store the final state of ``run`` (status, end, metrics, steps, artifacts)."""
        ...


class RunStore(RunWriter, Protocol):
    url: str  # for messages: the URL with any password hidden

    def put_run(self, run: RunRecord) -> None:
        """Bring the store up to ``run`` as recorded elsewhere, in one transaction: insert it if
        its id is new; if ``run`` is running, raise the stored heartbeat of a run still running
        to ``run.heartbeat``; if it ended, replace its final state as :meth:`finish_run` does,
        unless the store already has it ended with this status and end time. Calling it again,
        or from many processes at once, changes nothing more."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The whole record of ``run_id`` (or a unique prefix of it)."""
        ...

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching ``query`` in its order, without their steps and artifacts."""
        ...

    def count_runs(self, query: RunQuery | None = None) -> int:
        """How many runs match ``query``'s filters (not its limit); all runs without one."""
        ...

    def set_tags(self, run_id: str, tags: dict[str, str], remove: list[str]) -> RunRecord:
        """Add or replace ``tags`` and drop the ``remove`` keys; returns the updated run."""
        ...

    def set_notes(self, run_id: str, notes: str) -> RunRecord:
        """Replace the run's notes."""
        ...

    def reap_stale(self) -> list[str]:
        """Mark runs whose process is gone ``interrupted``; returns their ids."""
        ...

    def register_model(
        self, name: str, run_id: str, artifacts: list[Artifact], description: str
    ) -> ModelVersion:
        """Record ``artifacts`` of finished run ``run_id`` as the next version of ``name``."""
        ...

    def model_versions(self, name: str | None) -> list[ModelVersion]:
        """Every version of ``name`` (of every model when None), oldest first."""
        ...

    def model_version(self, name: str, version: int) -> ModelVersion:
        """One version; NotFoundError names the versions there are."""
        ...

    def record_image(self, name: str, version: int, repository: str, digest: str) -> None:
        """Note that ``version`` of model ``name`` was published as ``repository@digest``."""
        ...

    def set_alias(self, name: str, alias: str, version: int | None) -> AliasChange:
        """Point ``alias`` of model ``name`` at ``version`` (None removes it); kept in history."""
        ...

    def rollback_alias(self, name: str, alias: str) -> AliasChange:
        """Point ``alias`` back at the version it had before its last move."""
        ...

    def aliases(self, name: str) -> dict[str, int]:
        """The current aliases of model ``name``."""
        ...

    def alias_history(self, name: str) -> list[AliasChange]:
        """Every move of every alias of ``name``, oldest first."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
