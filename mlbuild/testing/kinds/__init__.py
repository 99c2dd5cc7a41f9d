"""The test kinds: a registry of dotted paths, imported when a test of the kind runs.

Each kind is a module with ``run(test, session) -> Verdict``: it reaches a verdict (passed or
failed, cached by the caller) or raises an :class:`~mlbuild.errors.MlbuildError` when it could
not run at all (the server did not start, the model raised) — an error, which is never cached.
A new kind is a module and a line here (STYLE.md habit 19), never an edit to the runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlbuild.testing.session import Session
    from mlbuild.testing.spec import CompiledTest
    from mlbuild.testing.verdict import Verdict

    KindRun = Callable[[CompiledTest, Session], Verdict]

KINDS = {
    "metric": "mlbuild.testing.kinds.metric:run",
    "cases": "mlbuild.testing.kinds.cases:run",
    "invariance": "mlbuild.testing.kinds.behaviour:run_invariance",
    "directional": "mlbuild.testing.kinds.behaviour:run_directional",
    "slices": "mlbuild.testing.kinds.slices:run",
    "latency": "mlbuild.testing.kinds.latency:run",
    "serving": "mlbuild.testing.kinds.serving:run",
    "pytest": "mlbuild.testing.kinds.pytest_folder:run",
}


def kind_runner(kind: str) -> KindRun:
    """The ``run`` function of ``kind``."""
    module, _, name = KINDS[kind].partition(":")
    found: KindRun = getattr(importlib.import_module(module), name)
    return found
