"""The engine that runs steps: the scheduler, step kinds (how a step does its work) and executors
(where its process runs), with their registries.

The names load on first use (PEP 562): a name imports only the submodule that defines it, so a
`plan` does not load what only a run needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.exec.events import Reporter as Reporter
    from mlbuild.exec.events import RunSummary as RunSummary
    from mlbuild.exec.events import Status as Status
    from mlbuild.exec.events import StepOutcome as StepOutcome
    from mlbuild.exec.executor import EXECUTORS as EXECUTORS
    from mlbuild.exec.executor import Executor as Executor
    from mlbuild.exec.executor import Executors as Executors
    from mlbuild.exec.executor import ProcessRequest as ProcessRequest
    from mlbuild.exec.executor import ProcessResult as ProcessResult
    from mlbuild.exec.identity import identity_hook as identity_hook
    from mlbuild.exec.kinds import KINDS as KINDS
    from mlbuild.exec.kinds import KindResult as KindResult
    from mlbuild.exec.kinds import StepFailure as StepFailure
    from mlbuild.exec.kinds import StepKind as StepKind
    from mlbuild.exec.kinds import StepStopped as StepStopped
    from mlbuild.exec.kinds import describe as describe
    from mlbuild.exec.kinds import external_hook as external_hook
    from mlbuild.exec.lock import run_lock as run_lock
    from mlbuild.exec.scheduler import graph_secrets as graph_secrets
    from mlbuild.exec.scheduler import run_steps as run_steps

_NAMES = {
    "Reporter": "events",
    "RunSummary": "events",
    "Status": "events",
    "StepOutcome": "events",
    "EXECUTORS": "executor",
    "Executor": "executor",
    "Executors": "executor",
    "ProcessRequest": "executor",
    "ProcessResult": "executor",
    "KINDS": "kinds",
    "KindResult": "kinds",
    "StepFailure": "kinds",
    "StepKind": "kinds",
    "StepStopped": "kinds",
    "describe": "kinds",
    "external_hook": "kinds",
    "run_lock": "lock",
    "graph_secrets": "scheduler",
    "identity_hook": "identity",
    "run_steps": "scheduler",
}
__getattr__ = lazy_getattr(__name__, _NAMES)
__all__ = [
    "EXECUTORS",
    "KINDS",
    "Executor",
    "Executors",
    "KindResult",
    "ProcessRequest",
    "ProcessResult",
    "Reporter",
    "RunSummary",
    "Status",
    "StepFailure",
    "StepKind",
    "StepOutcome",
    "StepStopped",
    "describe",
    "external_hook",
    "graph_secrets",
    "identity_hook",
    "run_lock",
    "run_steps",
]
