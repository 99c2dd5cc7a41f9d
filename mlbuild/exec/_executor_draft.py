"""A stand-in for ``mlbuild/exec/executor.py`` (seams-core's), verbatim from the agreed interface.

The container executor is written against this until the real module lands on main; then this
file is deleted and the imports point at :mod:`mlbuild.exec.executor`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from mlbuild.exec.process import ProcessResult
from mlbuild.masking import Secrets

__all__ = ["Executor", "ProcessRequest", "ProcessResult", "RunningStep"]


@dataclass(frozen=True)
class ProcessRequest:
    """One step's process, as the scheduler asks for it."""

    step: str
    argv: list[str]
    workspace: Path
    env: dict[str, str]
    passthrough: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    log_path: Path
    secrets: Secrets
    timeout: float | None
    on_line: Callable[[str], None]
    options: Mapping[str, Any]


class RunningStep(Protocol):
    ident: str

    def wait(self) -> ProcessResult: ...

    def stop(self) -> None: ...

    def abandon(self) -> None: ...


class Executor(Protocol):
    name: ClassVar[str]

    def identity(self, options: Mapping[str, Any]) -> dict[str, str]: ...

    def start(self, request: ProcessRequest) -> RunningStep: ...

    def leftovers(self, workspace: Path) -> list[str]: ...
