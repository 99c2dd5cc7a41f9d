"""A kind that raises, plugged in through the two registries the way a new section's kind is.

``python -m tests.exec.plugins ARGS`` runs the real CLI with two additions: the ``steps:`` compiler
makes each step whose name starts with ``boom`` a step of the kind ``raising`` (everything else
about it is the command kind's), and the kind ``raising`` raises a ``RuntimeError`` from
``execute`` — a bug in a kind, which must fail only that step.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any, ClassVar

from mlbuild.exec.context import KindContext
from mlbuild.exec.kinds import KindResult, register_kind
from mlbuild.graph.command import CommandSteps
from mlbuild.graph.kinds import CompileContext, register_section
from mlbuild.graph.model import StepSpec


class BoomSteps(CommandSteps):
    def compile(self, value: Any, ctx: CompileContext) -> list[StepSpec]:
        specs = super().compile(value, ctx)
        return [
            replace(s, kind="raising", config={"says": "kaboom"})
            if s.name.startswith("boom")
            else s
            for s in specs
        ]


class RaisingKind:
    name: ClassVar[str] = "raising"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        raise RuntimeError(spec.config["says"])

    def describe(self, spec: StepSpec) -> str:
        return "raise"


def main() -> int:
    from mlbuild.cli.main import main as cli

    register_section("steps", "tests.exec.plugins:BoomSteps")
    register_kind("raising", "tests.exec.plugins:RaisingKind")
    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
