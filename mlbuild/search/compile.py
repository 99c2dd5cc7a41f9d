"""``search.NAME`` → the step ``search:NAME`` (kind ``search``, :mod:`mlbuild.search.kind`).

The step's result is the best trial's params and run id; a step declaring ``params_from:
search.NAME`` runs after it and re-runs only when those params change. Its fingerprint holds what
the study's results depend on, as the default study name does (:mod:`mlbuild.search.naming`):

- ``deps``: the files the target and the steps it depends on read that none of them makes
  (an upstream output stands for its producer's inputs, so nothing has to run first);
- ``params``: the params those steps read, but the searched keys;
- ``config``: the search as declared (but its ``description``) and each of those steps' kind,
  config (the command), env and executor, so editing a command re-runs the search.

Searches are not in ``run``'s default targets (:meth:`~mlbuild.graph.Graph.default_targets`):
they are expensive, so they run when named (``mlbuild run search:hpo``) or when a selected step
takes their best params — as Bazel builds only what is asked, and DVC's ``repro`` of a stage runs
only what that stage needs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from mlbuild.graph.kinds import CompileContext
from mlbuild.graph.model import StepSpec
from mlbuild.paths import overlaps

if TYPE_CHECKING:
    from mlbuild.recipe import KeyPath, Search

KIND = "search"
SEARCH_VERSION = 1  # bumped when what a search step does with the same inputs changes


def step_name(search: str) -> str:
    return f"search:{search}"


class SearchSteps:
    """``search:`` → one step ``search:NAME`` for each search."""

    section: ClassVar[str] = "search"

    def compile(self, value: dict[str, Search], ctx: CompileContext) -> list[StepSpec]:
        from mlbuild.params import suggest
        from mlbuild.recipe import parse_duration

        specs = []
        steps = list(ctx.recipe.steps)
        for name, search in value.items():
            if search.step not in steps:  # refused with the recipe, before any step runs
                ctx.problem(
                    ("search", name, "step"),
                    f"no step named '{search.step}'{suggest(search.step, steps)}; steps: "
                    f"{', '.join(steps)}",
                )
                continue
            declared = search.model_dump(mode="json", exclude={"description"})
            specs.append(
                StepSpec(
                    name=step_name(name),
                    kind=KIND,
                    config={"version": SEARCH_VERSION, "search": name, "declared": declared},
                    deps=[],
                    outs=[],
                    params={},
                    metrics=[],
                    env={},
                    secrets=[],
                    needs=[],
                    always_run=False,
                    # the search's own `timeout` stops starting trials; the step gets no other
                    timeout=None if search.timeout is None else parse_duration(search.timeout) * 2,
                    upstream=[],
                    default=False,  # too expensive to run unless named or needed
                )
            )
        return specs

    def declared_at(self, spec: StepSpec) -> KeyPath:
        return ("search", spec.config["search"])

    def finish(self, spec: StepSpec, steps: dict[str, StepSpec]) -> StepSpec:
        """The search's step with its target's inputs: ``steps`` is every step, unlinked."""
        declared = spec.config["declared"]
        target = declared["step"]
        if target not in steps or steps[target].kind == KIND:
            return spec  # the search's own check names the step (mlbuild.search.spec)
        closure = _closure(target, steps)
        made = [out.path for name in closure for out in steps[name].outs]
        deps = sorted(
            {
                d
                for name in closure
                for d in steps[name].deps
                if not any(overlaps(d, m) for m in made)
            }
        )
        space = declared["space"]
        searched = list(space) if isinstance(space, dict) else []
        params: dict[str, Any] = {}
        for name in closure:
            for key, value in steps[name].params.items():
                if not any(key == s or key.startswith(f"{s}.") for s in searched):
                    params[key] = _without(value, key, searched)
        steps_config = {
            name: {
                "kind": steps[name].kind,
                "config": steps[name].config,
                "env": steps[name].env,
                "executor": steps[name].executor,
            }
            for name in sorted(closure)
        }
        env_vars: dict[str, str | None] = {}
        data: set[str] = set()
        for name in closure:
            env_vars.update(steps[name].env_vars)
            data.update(steps[name].data)
        return replace(
            spec,
            config={**spec.config, "steps": steps_config},
            deps=deps,
            params=params,
            env_vars=env_vars,
            data=sorted(data),
        )


def _closure(target: str, steps: dict[str, StepSpec]) -> list[str]:
    """``target`` and the steps it depends on (by deps on their outputs, and needs)."""
    wanted: list[str] = []
    frontier = [target]
    while frontier:
        current = frontier.pop()
        if current in wanted or current not in steps:
            continue
        wanted.append(current)
        spec = steps[current]
        frontier += spec.needs
        for dep in spec.deps:
            frontier += [
                n
                for n, s in steps.items()
                if n != current and any(overlaps(dep, o.path) for o in s.outs)
            ]
    return wanted


def _without(value: Any, key: str, searched: list[str]) -> Any:
    """A selected subtree ``value`` at ``key`` without the searched keys inside it."""
    if not isinstance(value, dict):
        return value
    return {
        k: _without(v, f"{key}.{k}", searched)
        for k, v in value.items()
        if f"{key}.{k}" not in searched
    }
