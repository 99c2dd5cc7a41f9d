"""Compile a validated recipe and its composed params into a :class:`Graph`, or report all problems.

Checks: parameter patterns and ``${params.KEY}`` references resolve; paths stay inside the
repository; no two steps write one path; ``needs`` name real steps; there is no cycle.
"""

from __future__ import annotations

import os
from graphlib import CycleError, TopologicalSorter
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.data import DatasetSpec
from mlbuild.errors import Problem, RecipeError
from mlbuild.graph.model import Graph, Output, ServedModel, StepSpec
from mlbuild.params import UnsafeValueError, flatten, interpolate, references, select, suggest
from mlbuild.recipe import (
    KeyPath,
    OutSpec,
    Recipe,
    ServingModel,
    SourceMap,
    Step,
    format_path,
    parse_duration,
)


def compile_graph(
    recipe: Recipe, source: SourceMap, root: Path, params: dict[str, Any], overrides: list[str]
) -> Graph:
    """The graph of ``recipe`` under workspace ``root``; raises :class:`RecipeError` listing all
    problems found."""
    problems: list[Problem] = []
    flat = flatten(params)
    datasets = _compile_datasets(recipe, root, source, problems)
    steps: dict[str, StepSpec] = {}
    for name, step in recipe.steps.items():
        spec = _compile_step(name, step, flat, params, root, source, problems)
        steps[name] = _resolve_data(spec, step, datasets, source, problems)
    _check_needs(recipe, source, problems)
    producers = _check_outs(steps, source, problems)
    _check_data_not_produced(datasets, producers, source, problems)
    model = _compile_model(recipe.name, recipe.model, producers, root, source, problems)
    if problems:
        raise RecipeError(_sorted(problems))
    linked = {name: _link(spec, producers) for name, spec in steps.items()}
    ordered = _order(linked, source)
    env = recipe.environment
    lock = None
    if env is not None and env.pipfile:
        lock = _relpath(root, str(Path(env.pipfile).parent / "Pipfile.lock"))
    elif env is not None and env.requirements:
        lock = _relpath(root, env.requirements)
    positions = {format_path(p): [pos.line, pos.column] for p, pos in source.values.items()}
    return Graph(
        name=recipe.name,
        recipe_file=source.file,
        steps={name: linked[name] for name in ordered},
        params=params,
        overrides=list(overrides),
        python=env.python if env else None,
        lock_file=lock,
        datasets=datasets,
        store_url=recipe.store.url if recipe.store else None,
        positions=positions,
        lines=dict(enumerate(source.lines, start=1)),
        model=model,
    )


def _compile_model(
    project: str,
    section: ServingModel | None,
    producers: dict[str, str],
    root: Path,
    source: SourceMap,
    problems: list[Problem],
) -> ServedModel | None:
    """The ``model:`` section with its paths checked: artifacts and a signature file must be step
    outputs, because the server loads only what mlbuild built and cached."""
    if section is None:
        return None

    def output(raw: str, path: KeyPath) -> str:
        normal = _relpath(root, raw)
        if normal is None:
            problems.append(source.problem(path, f"'{raw}' is outside the repository"))
            return raw
        if not any(normal == out or _inside(normal, out) for out in producers):
            problems.append(
                source.problem(
                    path,
                    f"'{raw}' is not an output of any step; add it to the outs of the step "
                    "that writes it (mlbuild serves only artifacts it built and cached)",
                )
            )
        return normal

    artifacts = {
        name: output(raw, ("model", "artifacts", name)) for name, raw in section.artifacts.items()
    }
    signature_file = None
    signature = None
    if isinstance(section.signature, str):
        signature_file = output(section.signature, ("model", "signature"))
    else:
        signature = section.signature.model_dump()
    class_ref = None
    if section.class_ is not None:
        file, _, attr = section.class_.rpartition(":")
        normal = _relpath(root, file)
        if normal is None:
            problems.append(
                source.problem(("model", "class"), f"'{file}' is outside the repository")
            )
        class_ref = f"{normal or file}:{attr}"
    return ServedModel(
        name=section.name or project,
        artifacts=artifacts,
        flavor=section.flavor,
        class_ref=class_ref,
        signature_file=signature_file,
        signature=signature,
    )


def _compile_step(
    name: str,
    step: Step,
    flat: dict[str, Any],
    params: dict[str, Any],
    root: Path,
    source: SourceMap,
    problems: list[Problem],
) -> StepSpec:
    here: KeyPath = ("steps", name)
    known = sorted(k for k in flat if not isinstance(flat[k], dict))

    def expand(text: str, path: KeyPath, *, for_shell: bool) -> str:
        try:
            return interpolate(text, flat, for_shell=for_shell)
        except UnsafeValueError as exc:  # a value that could change a shell command's structure
            problems.append(source.problem(path, str(exc)))
            return text
        except KeyError as exc:
            key = str(exc.args[0])
            problems.append(
                source.problem(
                    path, f"no parameter '{key}' for ${{params.{key}}}{suggest(key, known)}"
                )
            )
            return text

    if isinstance(step.cmd, str):
        cmd: str | list[str] = expand(step.cmd, (*here, "cmd"), for_shell=True)
        refs = references(step.cmd)
    else:
        cmd = [expand(arg, (*here, "cmd", i), for_shell=False) for i, arg in enumerate(step.cmd)]
        refs = [key for arg in step.cmd for key in references(arg)]

    selected, unmatched = select(params, [*step.params, *refs])
    for index, pattern in enumerate(step.params):
        if pattern in unmatched:
            problems.append(
                source.problem(
                    (*here, "params", index),
                    f"no parameter matches '{pattern}'{suggest(pattern, known)}",
                )
            )

    def paths(kind: str, raw: list[str]) -> list[str]:
        out = []
        for index, value in enumerate(raw):
            text = expand(value, (*here, kind, index), for_shell=False)
            normal = _relpath(root, text)
            if normal is None:
                problems.append(
                    source.problem(
                        (*here, kind, index),
                        f"'{value}' is outside the repository; {kind} must be paths inside {root}",
                    )
                )
                continue
            out.append(normal)
        return out

    outs_raw = [o if isinstance(o, OutSpec) else OutSpec(path=o) for o in step.outs]
    out_paths = paths("outs", [o.path for o in outs_raw])
    outs = [
        Output(path=p, cache=o.cache, persist=o.persist, dvc=o.dvc)
        for p, o in zip(out_paths, outs_raw, strict=False)
    ]
    metrics = paths("metrics", list(step.metrics))
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
        cmd=cmd,
        deps=paths("deps", list(step.deps)),
        outs=outs,
        params=selected,
        metrics=metrics,
        env=env,
        secrets=list(step.secrets),
        needs=list(step.needs),
        always_run=step.always_run,
        timeout=parse_duration(step.timeout) if step.timeout is not None else None,
        upstream=[],
    )


def _compile_datasets(
    recipe: Recipe, root: Path, source: SourceMap, problems: list[Problem]
) -> dict[str, DatasetSpec]:
    datasets = {}
    for name, dataset in recipe.data.items():
        path = _relpath(root, dataset.path)
        if path is None:
            problems.append(
                source.problem(
                    ("data", name, "path"),
                    f"'{dataset.path}' is outside the repository; a dataset lands inside it",
                )
            )
            continue
        imported = dataset.import_
        datasets[name] = DatasetSpec(
            name=name,
            path=path,
            dvc=dataset.dvc,
            remote=dataset.remote,
            import_repo=imported.repo if imported else None,
            import_rev=imported.rev if imported else None,
            import_path=imported.path if imported else None,
        )
    return datasets


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


def _check_data_not_produced(
    datasets: dict[str, DatasetSpec],
    producers: dict[str, str],
    source: SourceMap,
    problems: list[Problem],
) -> None:
    for name, dataset in datasets.items():
        for out, step in producers.items():
            if out == dataset.path or _inside(out, dataset.path) or _inside(dataset.path, out):
                problems.append(
                    source.problem(
                        ("data", name, "path"),
                        f"dataset '{name}' ({dataset.path}) is also written by step '{step}'; "
                        "a dataset is an input: read it in deps, or drop it from data",
                    )
                )


def _relpath(root: Path, raw: str) -> str | None:
    """``raw`` as a normalised posix path relative to ``root``, or ``None`` if it escapes it."""
    full = os.path.normpath(os.path.join(root, raw))
    rel = os.path.relpath(full, root)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return None
    return PurePosixPath(rel).as_posix()


def _check_needs(recipe: Recipe, source: SourceMap, problems: list[Problem]) -> None:
    for name, step in recipe.steps.items():
        for index, need in enumerate(step.needs):
            if need not in recipe.steps:
                problems.append(
                    source.problem(
                        ("steps", name, "needs", index),
                        f"no step named '{need}'{suggest(need, list(recipe.steps))}",
                    )
                )
            elif need == name:
                problems.append(
                    source.problem(("steps", name, "needs", index), "a step cannot need itself")
                )


def _check_outs(
    steps: dict[str, StepSpec], source: SourceMap, problems: list[Problem]
) -> dict[str, str]:
    """Map each out path to its step; report paths written twice or nested in another out."""
    producers: dict[str, str] = {}
    for name, spec in steps.items():
        for index, out in enumerate(spec.outs):
            for other_path, other in producers.items():
                if (
                    out.path == other_path
                    or _inside(out.path, other_path)
                    or _inside(other_path, out.path)
                ):
                    what = "also" if out.path == other_path else "overlaps"
                    problems.append(
                        source.problem(
                            ("steps", name, "outs", index),
                            f"'{out.path}' {what} written by step '{other}' ('{other_path}'); "
                            "each path must have one producer",
                        )
                    )
            producers.setdefault(out.path, name)
    return producers


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent.rstrip("/") + "/")


def _link(spec: StepSpec, producers: dict[str, str]) -> StepSpec:
    upstream: list[str] = []
    for dep in spec.deps:
        for out, producer in producers.items():
            if producer != spec.name and (dep == out or _inside(dep, out) or _inside(out, dep)):
                upstream.append(producer)
    upstream += spec.needs
    return StepSpec(**{**spec.__dict__, "upstream": sorted(set(upstream))})


def _order(steps: dict[str, StepSpec], source: SourceMap) -> list[str]:
    sorter = TopologicalSorter({name: spec.upstream for name, spec in steps.items()})
    try:
        return list(sorter.static_order())
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])  # in data-flow order: each feeds the next
        loop = " → ".join(cycle)
        raise RecipeError(
            [
                source.problem(
                    ("steps", cycle[0]),
                    f"steps form a cycle: {loop}; a step cannot depend on its own outputs, "
                    "directly or through other steps",
                    at_key=True,
                )
            ]
        ) from None


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
