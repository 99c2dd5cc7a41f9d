"""The command kind, compile side: each step under ``steps:`` becomes a command step.

Checks: parameter patterns and ``${params.KEY}`` references resolve (a value pasted into a shell
command must be inert), every path passes the fence, ``data:NAME`` names a dataset, ``needs``
names real steps, a secret is not also in ``env``, the executor named has its settings.

Some problems belong to one step only and stop it only when it is asked to run (``StepSpec.
problems``): a parameter it reads that does not resolve (an unset ``${oc.env:VAR}``), and a file
of the Hydra tree it reads itself while overrides are given, which it would not see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlbuild.graph.kinds import CompileContext, RecipePaths
from mlbuild.graph.model import COMMAND, Output, StepSpec
from mlbuild.params import (
    Resolved,
    UnsafeValueError,
    broken,
    flatten,
    interpolate,
    references,
    select,
    suggest,
)
from mlbuild.paths import is_within
from mlbuild.recipe import KeyPath, OutSpec, SourceMap, Step, format_path, parse_duration

if TYPE_CHECKING:
    from mlbuild.data import DatasetSpec
    from mlbuild.errors import Problem


class CommandSteps:
    """``steps:`` → one command step each."""

    section: ClassVar[str] = "steps"

    def compile(self, value: dict[str, Step], ctx: CompileContext) -> list[StepSpec]:
        from mlbuild.recipe import needs_settings

        configured = ctx.recipe.executors
        flat = flatten(ctx.resolved.params)  # once for every step, not once per step
        specs = []
        for name, step in value.items():
            spec = _compile_step(
                name, step, ctx.resolved, flat, ctx.paths, ctx.source, ctx.problems
            )
            spec = _check_own_reading(spec, step, ctx.resolved, ctx.overrides)
            spec = _with_env_vars(spec, ctx.resolved, dict(ctx.env_hashes))
            specs.append(_resolve_data(spec, step, ctx.datasets, ctx.source, ctx.problems))
            if needs_settings(step.executor) and getattr(configured, step.executor, None) is None:
                ctx.problem(
                    ("steps", name, "executor"),
                    f"executor '{step.executor}' needs its settings: add them under "
                    f"`executors: {{{step.executor}: {{...}}}}` (see `mlbuild schema`)",
                )
        _check_needs(value, ctx.source, ctx.problems)
        return specs

    def declared_at(self, spec: StepSpec) -> KeyPath:
        return ("steps", spec.name)


def _compile_step(
    name: str,
    step: Step,
    resolved: Resolved,
    flat: dict[str, Any],
    checked: RecipePaths,
    source: SourceMap,
    problems: list[Problem],
) -> StepSpec:
    """Step ``name``; ``flat`` is ``flatten(resolved.params)``."""
    here: KeyPath = ("steps", name)
    params, errors = resolved.params, resolved.errors

    def known() -> list[str]:  # for a suggestion: only when a parameter is missing
        return sorted(k for k in flat if not isinstance(flat[k], dict))

    own: list[list[str]] = []  # problems that stop this step only

    def unresolved(path: KeyPath, pattern: str) -> bool:
        hits = broken(pattern, errors)
        own.extend(
            [format_path(path), f"parameter '{key}' cannot be resolved: {errors[key]}"]
            for key in hits
        )
        return bool(hits)

    def expand(text: str, path: KeyPath, *, for_shell: bool) -> str:
        try:
            return interpolate(text, flat, for_shell=for_shell)
        except UnsafeValueError as exc:  # a value that could change a shell command's structure
            problems.append(source.problem(path, str(exc)))
            return text
        except KeyError as exc:
            key = str(exc.args[0])
            if not unresolved(path, key):
                problems.append(
                    source.problem(
                        path, f"no parameter '{key}' for ${{params.{key}}}{suggest(key, known())}"
                    )
                )
            return text

    if isinstance(step.cmd, str):
        cmd: str | list[str] = expand(step.cmd, (*here, "cmd"), for_shell=True)
        refs = references(step.cmd)
    else:
        cmd = [expand(arg, (*here, "cmd", i), for_shell=False) for i, arg in enumerate(step.cmd)]
        refs = [key for arg in step.cmd for key in references(arg)]

    selected, unmatched = select(params, [*step.params, *refs], flat=flat)
    for index, pattern in enumerate(step.params):
        if unresolved((*here, "params", index), pattern):
            continue
        if pattern in unmatched:
            problems.append(
                source.problem(
                    (*here, "params", index),
                    f"no parameter matches '{pattern}'{suggest(pattern, known())}",
                )
            )

    def paths(kind: str, raw: list[str], *, writes: bool) -> list[str | None]:
        """Each path interpolated and checked (``None`` where refused); keys point at the
        path itself, ``outs[0].path`` for an out written as a mapping."""
        out: list[str | None] = []
        for index, value in enumerate(raw):
            key: KeyPath = (*here, kind, index)
            if kind == "outs" and isinstance(step.outs[index], OutSpec):
                key = (*key, "path")
            text = expand(value, key, for_shell=False)
            if kind == "deps" and text.startswith("data:"):
                out.append(text)  # a dataset by name, resolved by _resolve_data
                continue
            out.append(checked.check(text, key, writes=writes))
        return out

    # a bare string was validated as OutSpec.path is (min_length=1): constructed, not validated
    # again, which would build OutSpec's pydantic schema on a recipe rebuilt from its cache
    outs_raw = [o if isinstance(o, OutSpec) else OutSpec.model_construct(path=o) for o in step.outs]
    out_paths = paths("outs", [o.path for o in outs_raw], writes=True)
    outs = [
        Output(path=p, cache=o.cache, persist=o.persist, dvc=o.dvc)
        for p, o in zip(out_paths, outs_raw, strict=True)
        if p is not None
    ]
    metrics = [m for m in paths("metrics", list(step.metrics), writes=True) if m is not None]
    outs += [Output(path=m) for m in metrics if m not in {o.path for o in outs}]
    env = {k: expand(v, (*here, "env", k), for_shell=False) for k, v in step.env.items()}
    for secret in step.secrets:
        if secret in env:
            problems.append(
                source.problem(
                    (*here, "secrets"),
                    f"'{secret}' is both in env and in secrets; a secret's value comes from "
                    "the environment and is never written in the recipe",
                )
            )
    return StepSpec(
        name=name,
        kind=COMMAND,
        config={"cmd": cmd},
        deps=[d for d in paths("deps", list(step.deps), writes=False) if d is not None],
        outs=outs,
        params=selected,
        metrics=metrics,
        env=env,
        secrets=list(step.secrets),
        needs=list(step.needs),
        always_run=step.always_run,
        timeout=parse_duration(step.timeout) if step.timeout is not None else None,
        upstream=[],
        problems=own,
        executor=step.executor,
        params_from=step.params_from.removeprefix("search.") if step.params_from else None,
    )


def _check_own_reading(
    spec: StepSpec, step: Step, resolved: Resolved, overrides: list[str]
) -> StepSpec:
    """A step that reads a file of the Hydra tree itself cannot see overrides: refuse to run it
    under overrides (a params file is different: mlbuild writes the overrides into it)."""
    if not overrides or not resolved.tree_files:
        return spec
    own = list(spec.problems)
    for index, dep in enumerate(spec.deps):
        read = [f for f in resolved.tree_files if is_within(f, dep)]
        if not read:
            continue
        raw = step.deps[index]
        what = (
            f"'{raw}' is a config file of the Hydra tree"
            if read[0] == dep
            else f"'{raw}' holds {read[0]}, a config file of the Hydra tree"
        )
        own.append(
            [
                format_path(("steps", spec.name, "deps", index)),
                f"{what}, which this step reads itself: it would not see the overrides "
                f"{' '.join(overrides)}; read the values from ${{params.KEY}} or "
                f"mlbuild.params(), or make it a params file (params: {{files: [{read[0]}]}}), "
                "which mlbuild writes the overrides into",
            ]
        )
    return StepSpec(**{**spec.__dict__, "problems": own})


def _with_env_vars(
    spec: StepSpec, resolved: Resolved, env_hashes: dict[str, str | None]
) -> StepSpec:
    """The env vars the step's selected params were resolved from, with their values' hashes."""
    names = {
        var
        for key, read in resolved.env.items()
        for chosen in spec.params
        if key == chosen or key.startswith(f"{chosen}.") or chosen.startswith(f"{key}.")
        for var in read
    }
    if not names:
        return spec
    env_vars = {name: env_hashes.get(name) for name in sorted(names)}
    return StepSpec(**{**spec.__dict__, "env_vars": env_vars})


def _resolve_data(
    spec: StepSpec,
    step: Step,
    datasets: dict[str, DatasetSpec],
    source: SourceMap,
    problems: list[Problem],
) -> StepSpec:
    """Move deps that name a dataset (``data:NAME``, or its path) from ``deps`` to ``data``."""
    by_path = {d.path: d.name for d in datasets.values()}
    deps: list[str] = []
    data: list[str] = []
    for index, raw in enumerate(step.deps):
        if raw.startswith("data:"):
            name = raw.removeprefix("data:")
            if name in datasets:
                data.append(name)
            else:
                known = sorted(datasets)
                problems.append(
                    source.problem(
                        ("steps", spec.name, "deps", index),
                        f"no dataset named '{name}'{suggest(name, known)}"
                        + ("" if known else "; declare it under `data:`"),
                    )
                )
    for dep in spec.deps:
        if dep.startswith("data:"):
            continue
        if dep in by_path:
            data.append(by_path[dep])
        else:
            deps.append(dep)
    return StepSpec(**{**spec.__dict__, "deps": deps, "data": sorted(set(data))})


def _check_needs(steps: dict[str, Step], source: SourceMap, problems: list[Problem]) -> None:
    for name, step in steps.items():
        for index, need in enumerate(step.needs):
            if need not in steps:
                problems.append(
                    source.problem(
                        ("steps", name, "needs", index),
                        f"no step named '{need}'{suggest(need, list(steps))}",
                    )
                )
            elif need == name:
                problems.append(
                    source.problem(("steps", name, "needs", index), "a step cannot need itself")
                )
