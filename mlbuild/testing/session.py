"""What the tests of one ``mlbuild test`` share: the model, its server, the files, the metrics.

Everything is found once and on first use: the model is loaded from the verified cache as
``mlbuild serve`` loads it (``resolve_model`` then ``ModelRuntime.load``) only when a test that
runs needs it, the server is started only for a test that goes through it, and the run store is
opened only for a baseline. A run whose verdicts all come from the cache therefore loads neither
the model nor numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.graph import Action, Graph, Workspace, make_plan
from mlbuild.serve.resolve import ModelSource, resolve_model
from mlbuild.testing.baseline import Baseline, Baselines
from mlbuild.testing.spec import CompiledTest
from mlbuild.testing.tables import Table, read_table

if TYPE_CHECKING:
    from mlbuild.serve.runtime import ModelRuntime
    from mlbuild.testing.server import ServerProcess


@dataclass(frozen=True)
class MetricValue:
    step: str
    key: str
    value: Any


class Session:
    """The shared state of the tests of one run; :meth:`close` stops what it started."""

    def __init__(self, ws: Workspace, graph: Graph) -> None:
        self.ws = ws
        self.graph = graph
        self.root: Path = ws.root
        self._source: ModelSource | None = None
        self._runtime: ModelRuntime | None = None
        self._server: ServerProcess | None = None
        self._bundle_server: ServerProcess | None = None
        self._scratch: Any = None  # the bundle's temporary directory
        self._tables: dict[str, Table] = {}
        self._metrics: dict[str, dict[str, Any]] | None = None
        self._baselines = Baselines(ws, graph)
        self._baseline_of: dict[str, Baseline] = {}

    # the model ---------------------------------------------------------------------------------

    def source(self) -> ModelSource:
        """The model the recipe's current outputs hold (its steps must be up to date)."""
        if self._source is None:
            self._source = resolve_model(self.ws, self.graph)
        return self._source

    def signature(self) -> dict[str, Any]:
        return self.source().signature

    def runtime(self) -> ModelRuntime:
        """The model, loaded in-process from the verified cache, as ``mlbuild predict`` does."""
        if self._runtime is None:
            from mlbuild.extras import check_extra

            check_extra("serve", "a test that runs the model")
            from mlbuild.serve.runtime import ModelRuntime

            self._runtime = ModelRuntime.load(self.source())
        return self._runtime

    def server(self) -> ServerProcess:
        """``mlbuild serve`` for this recipe and its overrides, started on first use."""
        if self._server is None:
            from mlbuild.testing.server import ServerProcess

            self._server = ServerProcess(self.ws.recipe_path, list(self.graph.overrides))
        return self._server

    def bundle_server(self) -> ServerProcess:
        """``mlbuild serve BUNDLE`` on the bundle ``mlbuild package`` makes of the model, written
        to a temporary directory outside the workspace, started on first use."""
        if self._bundle_server is None:
            import tempfile

            from mlbuild.package.bundle import write_directory
            from mlbuild.package.gather import gather
            from mlbuild.testing.server import ServerProcess

            self._scratch = tempfile.TemporaryDirectory(prefix="mlbuild-test-bundle-")
            folder = Path(self._scratch.name) / "bundle"
            write_directory(gather(self.ws, self.graph, store=None).bundle, folder)
            self._bundle_server = ServerProcess(self.ws.recipe_path, [], bundle=folder)
        return self._bundle_server

    def server_url(self) -> str | None:
        """The URL of the server if one was started (for the pytest fixtures)."""
        return self._server.url if self._server is not None else None

    # files and metrics ------------------------------------------------------------------------

    def table(self, path: str) -> Table:
        """The test file at ``path``, read once (:class:`TableError` if it cannot be)."""
        if path not in self._tables:
            self._tables[path] = read_table(self.root, path)
        return self._tables[path]

    def step_metrics(self) -> dict[str, dict[str, Any]]:
        """What each up-to-date step with metrics recorded, from its cached result."""
        if self._metrics is None:
            names = [s.name for s in self.graph.steps.values() if s.metrics]
            decisions = make_plan(self.ws.planner(self.graph), self.graph.upstream_closure(names))
            self._metrics = {
                d.step: dict(d.result.metrics)
                for d in decisions
                if d.step in names and d.action is Action.CACHED and d.result is not None
            }
        return self._metrics

    def metric(self, test: CompiledTest) -> MetricValue | None:
        """The value of a metric test's metric; None when no step (or several) recorded it."""
        assert test.metric_key is not None
        recorded = self.step_metrics()
        found = [
            MetricValue(step, test.metric_key, recorded[step][test.metric_key])
            for step in test.metric_steps
            if step in recorded and test.metric_key in recorded[step]
        ]
        return found[0] if len(found) == 1 else None

    def baseline(self, test: CompiledTest) -> Baseline | None:
        """The baseline a metric test compares with (None: it declares none)."""
        config = test.config.get("baseline")
        if not isinstance(config, dict):
            return None
        if test.name not in self._baseline_of:
            value = self.metric(test)
            step = value.step if value is not None else None
            assert test.metric_key is not None
            self._baseline_of[test.name] = self._baselines.lookup(config, step, test.metric_key)
        return self._baseline_of[test.name]

    def close(self) -> None:
        try:
            for server in (self._server, self._bundle_server):
                if server is not None:
                    server.stop()
            self._server = self._bundle_server = None
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
            self._baselines.close()
