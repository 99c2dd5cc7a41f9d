"""mlbuild's pytest plugin: fixtures for a team's own model tests.

Registered through the ``pytest11`` entry point, so any pytest run in an environment with mlbuild
installed has them; ``mlbuild test`` runs a ``kind: pytest`` folder with them, on the model it is
testing. Every fixture is session-scoped and found on first use (nothing is loaded for a test
session that does not ask):

``model``       the model, loaded in-process from the verified cache (``ModelRuntime``)
``predict``     ``predict(rows) -> {output: [values]}``: rows as ``{column: [values]}``, a list
                of ``{column: value}`` records, or a list of rows for a matrix input
``server_url``  ``http://127.0.0.1:PORT`` of ``mlbuild serve`` on the model, started on first
                use and stopped at the end of the session
``params``      the resolved params (nested, as composed)
``metrics``     the metrics the pipeline's steps recorded (flat, as runs record them)

    def test_setosa(predict):
        assert predict({"petal_length": [1.4], ...})["species"] == ["setosa"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlbuild.testing.context import PluginContext, load_context


@pytest.fixture(scope="session")
def mlbuild_context() -> PluginContext:
    """What the other fixtures read (see :mod:`mlbuild.testing.context`)."""
    return load_context()


@pytest.fixture(scope="session")
def model(mlbuild_context: PluginContext) -> Any:
    """The model as ``mlbuild serve`` loads it: a ``ModelRuntime`` (``.predict(arrays)``,
    ``.signature``, ``.version``)."""
    from mlbuild.serve import ModelRuntime, ModelSource

    if mlbuild_context.model is None:
        pytest.fail(mlbuild_context.problem or "the recipe has no model: section", pytrace=False)
    return ModelRuntime.load(ModelSource.from_json(mlbuild_context.model))


@pytest.fixture(scope="session")
def predict(model: Any) -> Callable[[Any], dict[str, list[Any]]]:
    """Score rows in-process, decoded exactly as the server decodes a request."""
    from mlbuild.serve import mlflow
    from mlbuild.testing.predict import as_list

    def predict_rows(rows: Any) -> dict[str, list[Any]]:
        inputs = mlflow.decode_rows(model, _plain(rows), "rows")
        return {name: as_list(array) for name, array in model.predict(inputs).items()}

    return predict_rows


@pytest.fixture(scope="session")
def server_url(mlbuild_context: PluginContext) -> Iterator[str]:
    """The URL of ``mlbuild serve`` serving the model."""
    if mlbuild_context.server_url:
        yield mlbuild_context.server_url
        return
    from pathlib import Path

    from mlbuild.testing.server import ServerProcess

    server = ServerProcess(Path(mlbuild_context.recipe), list(mlbuild_context.overrides))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def params(mlbuild_context: PluginContext) -> dict[str, Any]:
    """The resolved params (nested, as Hydra composed them)."""
    return mlbuild_context.params


@pytest.fixture(scope="session")
def metrics(mlbuild_context: PluginContext) -> dict[str, Any]:
    """What the steps recorded in their metrics files, as runs record it (``accuracy``, or
    ``STEP/KEY`` for a key several steps record)."""
    return mlbuild_context.metrics


def _plain(rows: Any) -> Any:
    """numpy arrays (and their scalars) as lists, as the JSON decoder expects."""
    if hasattr(rows, "tolist"):
        return rows.tolist()
    if isinstance(rows, dict):
        return {k: _plain(v) for k, v in rows.items()}
    if isinstance(rows, list | tuple):
        return [_plain(v) for v in rows]
    return rows
