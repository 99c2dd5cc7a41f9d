"""The command kind: a step of ``steps:`` runs its command, a string through ``/bin/sh -c`` or a
list as argv (parameter values reach it without shell parsing either way)."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, ClassVar

from mlbuild.exec.kinds import KindResult
from mlbuild.graph import StepSpec

if TYPE_CHECKING:  # a plan describes command steps without loading what runs them
    from mlbuild.exec.context import KindContext


class CommandKind:
    name: ClassVar[str] = "command"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        """Run the command; its duration is the process's own, from spawn to exit (mlbuild's
        work before it is not billed to it)."""
        cmd = spec.config["cmd"]
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else [str(a) for a in cmd]
        run = ctx.run_process(argv)
        return KindResult(duration=run.duration)

    def describe(self, spec: StepSpec) -> str:
        cmd = spec.config["cmd"]
        return cmd if isinstance(cmd, str) else shlex.join(cmd)
