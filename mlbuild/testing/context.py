"""What mlbuild's pytest fixtures see: the model, the params, the metrics and a server's URL.

``mlbuild test`` writes it as JSON for the pytest process it starts (``MLBUILD_TEST_CONTEXT``
names the file), so the fixtures load exactly the model the run tested. A developer who runs
``pytest tests/model`` directly gets the same from the nearest ``ml.yaml``, as ``mlbuild
predict`` would resolve it (the model's steps must be up to date).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild import atomic

if TYPE_CHECKING:
    from mlbuild.testing.session import Session

CONTEXT_ENV = "MLBUILD_TEST_CONTEXT"


@dataclass(frozen=True)
class PluginContext:
    root: str
    recipe: str
    overrides: list[str]
    model: dict[str, Any] | None  # a ModelSource as JSON; None when the recipe has no model
    params: dict[str, Any]
    metrics: dict[str, Any]
    server_url: str | None = None
    problem: str | None = field(default=None)  # why there is no model, for the fixture's error


def context_of(session: Session) -> PluginContext:
    """The context of the tests ``session`` runs."""
    from mlbuild.exec.metrics import merge_metrics

    graph = session.graph
    model = session.source().to_json() if graph.model is not None else None
    recorded = session.step_metrics()
    return PluginContext(
        root=str(session.root),
        recipe=str(session.ws.recipe_path),
        overrides=list(graph.overrides),
        model=model,
        params=graph.params,
        metrics=merge_metrics(
            sorted(recorded.items(), key=lambda i: list(graph.steps).index(i[0]))
        ),
        server_url=session.server_url(),
    )


def write_context(context: PluginContext, path: Path) -> None:
    atomic.write_json(path, asdict(context), sync=False)


def load_context() -> PluginContext:
    """The context ``mlbuild test`` handed over, or the current directory's workspace's."""
    named = os.environ.get(CONTEXT_ENV)
    if named:
        raw = json.loads(Path(named).read_text(encoding="utf-8"))
        return PluginContext(**raw)
    return _from_workspace()


def _from_workspace() -> PluginContext:
    from mlbuild.errors import MlbuildError
    from mlbuild.graph import Workspace
    from mlbuild.testing.session import Session

    ws = Workspace.find(Path.cwd())
    try:
        session = Session(ws, ws.graph([]))
        try:
            return context_of(session)
        except MlbuildError as exc:
            graph = session.graph
            return PluginContext(
                str(ws.root), str(ws.recipe_path), [], None, graph.params, {}, None, exc.message
            )
        finally:
            session.close()
    finally:
        ws.save_state()
