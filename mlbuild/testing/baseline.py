"""The baseline a metric test compares with: a registered model version under an alias.

``mlbuild model register`` keeps the registering run's metrics in the version's provenance;
``mlbuild model alias iris production 3`` points ``production`` at version 3. The metric test
reads that version's value of its metric. The store is opened only for tests that declare a
baseline, so other tests never load SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlbuild.errors import NotFoundError
from mlbuild.graph import Graph, Workspace
from mlbuild.testing.steps import STEP_SEPARATOR


@dataclass(frozen=True)
class Baseline:
    model: str
    alias: str
    version: int | None  # None: no version has the alias (yet)
    value: Any = None  # the metric's value in that version's provenance (None: not recorded)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version,
            "value": self.value,
        }


class Baselines:
    """Reads baselines from the workspace's run store, opened once, on first use."""

    def __init__(self, ws: Workspace, graph: Graph) -> None:
        self.ws = ws
        self.graph = graph
        self._store: Any = None

    def lookup(self, config: dict[str, Any], step: str | None, key: str) -> Baseline:
        """The baseline ``config`` (a metric test's ``baseline:``) names, with the value of
        ``key`` (recorded by ``step``) in its version."""
        model = config.get("model") or (self.graph.model.name if self.graph.model else None)
        model = model or self.graph.name
        alias = str(config.get("alias") or "production")
        store = self._open()
        try:
            version = store.aliases(model).get(alias)
        except NotFoundError:
            version = None  # no model of that name registered yet
        if version is None:
            return Baseline(model, alias, None)
        metrics = store.model_version(model, version).provenance.get("metrics") or {}
        names = [f"{step}{STEP_SEPARATOR}{key}", key] if step else [key]
        if step is None and key not in metrics:
            # the registering run had two steps record the key: any one of them will not do
            suffixed = [k for k in metrics if k.endswith(f"{STEP_SEPARATOR}{key}")]
            names += suffixed[:1] if len(suffixed) == 1 else []
        value = next((metrics[n] for n in names if n in metrics), None)
        return Baseline(model, alias, version, value)

    def _open(self) -> Any:
        if self._store is None:
            from mlbuild.store import open_workspace_store

            self._store = open_workspace_store(self.ws.meta, self.graph.store_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
