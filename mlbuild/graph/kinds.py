"""Step kinds, compile side: each recipe section that makes steps has a compiler, found by name.

``compile_graph`` hands every registered section of the recipe to its compiler, which returns
:class:`~mlbuild.graph.model.StepSpec` s of its kind — ``steps:`` → command steps, ``model:`` →
the model check, later ``search:``, ``tests:``, ``package:``. The graph compiler then does the
same for every step, whatever made it: no two steps write one path, deps link producers to
consumers, no cycle. Adding a section is adding a compiler and a line to :data:`SECTIONS` (and
the kind that executes its steps to ``mlbuild.exec.kinds.KINDS``), never editing the loop.

Contract of :meth:`SectionCompiler.compile`:

- It gets its section's validated value (never ``None``) and a :class:`CompileContext`. It
  imports nothing heavy (no numpy, no optuna, no docker): compiling runs on every recipe change.
- Every path it takes from the recipe goes through :meth:`RecipePaths.check`, which refuses what
  the workspace's fence refuses and records where the path was declared; every mistake becomes a
  located problem (:meth:`CompileContext.problem`), all reported together.
- Its steps' names are ``SECTION:NAME`` (``model:check``, ``tests:golden``): user steps cannot
  contain ``:``, so they never clash; the CLI accepts them as targets.
- A compiler whose steps are made of other steps' inputs (a search: its target's) also has
  ``finish(spec, steps) -> StepSpec``, called once every section is compiled, with every step
  by name (unlinked: ``upstream`` is not set yet).
- A step's ``config`` is JSON (it is cached in the compiled graph and enters the fingerprint),
  and holds everything that changes what the step produces beyond its deps' contents, params and
  env — so a change re-runs it and ``plan`` names the key (``config.sample changed``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from mlbuild.errors import Problem
from mlbuild.graph.model import PathUse, StepSpec
from mlbuild.paths import Fence, UnsafePathError

if TYPE_CHECKING:
    from mlbuild.data import DatasetSpec
    from mlbuild.params import Resolved
    from mlbuild.recipe import KeyPath, Recipe, SourceMap


class RecipePaths:
    """Checks each recipe path against the fence; a refused one becomes a located problem."""

    def __init__(self, fence: Fence, source: SourceMap, problems: list[Problem]) -> None:
        self.fence = fence
        self.source = source
        self.problems = problems
        self.uses: list[PathUse] = []
        self._keys: dict[str, list[KeyPath]] = {}  # by normalised path, in declaration order

    def check(self, raw: str, key: KeyPath, *, writes: bool) -> str | None:
        """``raw`` normalised, or ``None`` after recording why it is refused."""
        from mlbuild.recipe._yaml import format_path  # not the package's lazy name: per path

        try:
            normal = self.fence.check(raw, writes=writes)
        except UnsafePathError as exc:
            self.problems.append(self.source.problem(key, exc.message))
            return None
        self.uses.append(PathUse(format_path(key), normal, writes))
        self._keys.setdefault(normal, []).append(key)
        return normal

    def key_of(self, path: str, prefix: KeyPath) -> KeyPath:
        """Where output ``path`` was declared under ``prefix`` (in outs, else in metrics)."""
        n = len(prefix)
        written = (("outs",), ("metrics",), ("output",), ("bundle",))
        # the keys that declared this path only: scanning every recipe path for each output
        # was all-pairs, 60% of compiling 2,000 steps
        for key in self._keys.get(path, ()):
            if key[:n] == prefix and key[n : n + 1] in written:
                return key
        return (*prefix, "outs")


@dataclass
class CompileContext:
    """What a section compiler may use: the whole recipe, the composed params, the paths."""

    recipe: Recipe
    source: SourceMap
    resolved: Resolved
    paths: RecipePaths
    datasets: dict[str, DatasetSpec]
    overrides: list[str]  # the recipe's `overrides:` then the command line's
    env_hashes: Mapping[str, str | None]  # env vars the params read → their values' hashes
    problems: list[Problem] = field(default_factory=list)

    def problem(self, key: KeyPath, message: str) -> None:
        """Record a mistake at recipe key path ``key`` (``("model", "check", "sample")``)."""
        self.problems.append(self.source.problem(key, message))


class SectionCompiler(Protocol):
    section: ClassVar[str]  # the recipe's top-level key: "steps", "model"

    def compile(self, value: Any, ctx: CompileContext) -> list[StepSpec]:
        """The steps of section ``value`` (see the module's contract)."""
        ...

    def declared_at(self, spec: StepSpec) -> KeyPath:
        """Where ``spec`` is declared in the recipe (``("model", "check")``), for its problems."""
        ...


# recipe section → "module:Class", compiled in this order
SECTIONS: dict[str, str] = {
    "steps": "mlbuild.graph.command:CommandSteps",
    "model": "mlbuild.serve.check.compile:ModelCheckSteps",
    "search": "mlbuild.search.compile:SearchSteps",
    "tests": "mlbuild.testing.steps:TestSteps",
    "package": "mlbuild.package.steps:PackageSteps",
}


def section_compilers() -> list[SectionCompiler]:
    """The registered compilers, imported now."""
    found = []
    for ref in SECTIONS.values():
        module, _, attr = ref.partition(":")
        found.append(getattr(importlib.import_module(module), attr)())
    return found


def register_section(section: str, ref: str) -> None:
    """Add (or replace) the compiler of ``section``: ``ref`` is ``"module:Class"``."""
    SECTIONS[section] = ref
