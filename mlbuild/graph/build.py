"""Compile a validated recipe and its composed params into a :class:`Graph`, or report all problems.

Checks: parameter patterns and ``${params.KEY}`` references resolve; every path passes the
workspace's :class:`~mlbuild.paths.Fence` (inside the repository with symlinks resolved, away from
``.git``, ``.mlbuild``, the cache, and — for what the engine writes — the recipe, its params files
and Hydra's config); no two steps write one path; ``needs`` name real steps; there is no cycle. When
anything is wrong, the inputs ``plan`` would miss (a dep no step makes, a lock file) are reported
with it.

Some problems belong to one step only and stop it only when it is asked to run (``StepSpec.
problems``): a parameter it reads that does not resolve (an unset ``${oc.env:VAR}``), and a file
of the Hydra tree it reads itself while overrides are given, which it would not see.
"""

from __future__ import annotations

import contextlib
import os
from graphlib import CycleError, TopologicalSorter
from pathlib import Path, PurePosixPath

from mlbuild.data import DatasetSpec, resolve_kind
from mlbuild.errors import Problem, RecipeError
from mlbuild.graph.best import check_params_from
from mlbuild.graph.checks import missing_inputs
from mlbuild.graph.model import Graph, Output, PathUse, ServedModel, StepSpec
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
from mlbuild.paths import Fence, UnsafePathError, is_within, normalise, overlaps
from mlbuild.recipe import (
    RECIPE_FILE,
    KeyPath,
    OutSpec,
    ParamSources,
    Recipe,
    ServingModel,
    SourceMap,
    Step,
    format_path,
    parse_duration,
)


def compile_graph(
    recipe: Recipe,
    source: SourceMap,
    root: Path,
    resolved: Resolved,
    overrides: list[str],
    env_hashes: dict[str, str | None] | None = None,
    *,
    recipe_name: str = RECIPE_FILE,
    cache: Path | None = None,
) -> Graph:
    """The graph of ``recipe`` (the file ``recipe_name`` in workspace ``root``) with the
    parameters ``resolved`` (for the command-line ``overrides``); ``env_hashes`` maps the
    environment variables the parameters read to their values' hashes. ``cache`` is the cache
    directory, which no recipe path may reach. Raises :class:`RecipeError` listing all problems
    found."""
    problems: list[Problem] = []
    params = resolved.params
    protected = protected_paths(recipe, recipe_name)
    for file in resolved.tree_files:
        protected.setdefault(file, "a file of the Hydra config")
    fence = Fence(root, protected, cache)
    paths = _Paths(fence, source, problems)
    config_dir = _config_dir_below_root(recipe)
    if config_dir is not None:
        paths.check(config_dir, ("params", "config_dir"), writes=False)
    datasets = _compile_datasets(recipe, paths)
    overridden = [*recipe.overrides, *overrides]
    steps: dict[str, StepSpec] = {}
    for name, step in recipe.steps.items():
        spec = _compile_step(name, step, resolved, paths, source, problems)
        spec = _check_own_reading(spec, step, resolved, overridden)
        spec = _with_env_vars(spec, resolved, env_hashes or {})
        steps[name] = _resolve_data(spec, step, datasets, source, problems)
    _check_needs(recipe, source, problems)
    producers = _check_outs(steps, paths, source, problems)
    _check_data_not_produced(datasets, producers, source, problems)
    model = _compile_model(recipe.name, recipe.model, producers, paths, source, problems)
    env = recipe.environment
    lock = None
    if env is not None and env.pipfile:
        pipfile = paths.check(env.pipfile, ("environment", "pipfile"), writes=False)
        if pipfile is not None:
            beside = str(PurePosixPath(pipfile).parent / "Pipfile.lock")
            lock = paths.check(beside, ("environment", "pipfile"), writes=False)
    elif env is not None and env.requirements:
        lock = paths.check(env.requirements, ("environment", "requirements"), writes=False)
    positions = {format_path(p): [pos.line, pos.column] for p, pos in source.values.items()}
    graph = Graph(
        name=recipe.name,
        recipe_file=source.file,
        steps=steps,
        params=params,
        overrides=list(overrides),
        python=env.python if env else None,
        lock_file=lock,
        datasets=datasets,
        store_url=recipe.store.url if recipe.store else None,
        positions=positions,
        lines=dict(enumerate(source.lines, start=1)),
        model=model,
        param_writes=dict(resolved.writes),
        sweeper=dict(resolved.sweeper) if resolved.sweeper else None,
        hydra_output_dir=resolved.output_dir,
        paths=paths.uses,
        protected=fence.protected,
    )
    if problems:
        # all at once: what `plan` would refuse about inputs too, not only the recipe's shape
        problems += missing_inputs(
            graph, root, list(steps), lambda name: resolve_kind(root, datasets[name])
        )
        raise RecipeError(_sorted(problems))
    linked = {name: _link(spec, producers) for name, spec in steps.items()}
    ordered = _order(linked, source)
    graph = Graph(**{**graph.__dict__, "steps": {name: linked[name] for name in ordered}})
    problems += check_params_from(graph, recipe, source)
    if problems:
        raise RecipeError(_sorted(problems))
    return graph


def protected_paths(recipe: Recipe, recipe_name: str) -> dict[str, str]:
    """What the engine never writes or removes: the recipe, its params files (mlbuild itself
    writes overrides into them) and Hydra's config directory."""
    protected = {normalise(recipe_name): f"the recipe ({recipe_name})"}
    section = recipe.params
    files: list[str] = []
    if isinstance(section, str):
        files = [section]
    elif isinstance(section, list):
        files = list(section)
    elif isinstance(section, ParamSources):
        files = list(section.files)
        if section.config_dir is not None:
            # a bad config_dir is reported where it is checked as a path
            with contextlib.suppress(UnsafePathError):
                protected[normalise(section.config_dir)] = "Hydra's config directory"
    for file in files:
        with contextlib.suppress(UnsafePathError):  # reported by the params reader
            protected[normalise(file)] = f"a params file ({file})"
    return protected


def _config_dir_below_root(recipe: Recipe) -> str | None:
    """The Hydra config directory whose path the fence checks: any but the workspace root itself
    (DVC-style trees keep their config beside the recipe: ``config_dir: .``)."""
    section = recipe.params
    if isinstance(section, ParamSources) and section.config_dir is not None:
        return None if os.path.normpath(section.config_dir) == "." else section.config_dir
    return None


class _Paths:
    """Checks each recipe path against the fence; a refused one becomes a located problem."""

    def __init__(self, fence: Fence, source: SourceMap, problems: list[Problem]) -> None:
        self.fence = fence
        self.source = source
        self.problems = problems
        self.uses: list[PathUse] = []
        self._keys: list[tuple[KeyPath, str]] = []

    def check(self, raw: str, key: KeyPath, *, writes: bool) -> str | None:
        """``raw`` normalised, or ``None`` after recording why it is refused."""
        try:
            normal = self.fence.check(raw, writes=writes)
        except UnsafePathError as exc:
            self.problems.append(self.source.problem(key, exc.message))
            return None
        self.uses.append(PathUse(format_path(key), normal, writes))
        self._keys.append((key, normal))
        return normal

    def key_of(self, step: str, path: str) -> KeyPath:
        """Where step ``step`` declares output ``path`` (in outs, else in metrics)."""
        for key, normal in self._keys:
            if key[:2] == ("steps", step) and key[2] in ("outs", "metrics") and normal == path:
                return key
        return ("steps", step, "outs")


def _compile_model(
    project: str,
    section: ServingModel | None,
    producers: dict[str, str],
    paths: _Paths,
    source: SourceMap,
    problems: list[Problem],
) -> ServedModel | None:
    """The ``model:`` section with its paths checked: artifacts and a signature file must be step
    outputs, because the server loads only what mlbuild built and cached."""
    if section is None:
        return None

    def output(raw: str, path: KeyPath) -> str:
        normal = paths.check(raw, path, writes=False)
        if normal is None:
            return raw
        if not any(is_within(normal, out) for out in producers):
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
        normal = paths.check(file, ("model", "class"), writes=False)
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
    resolved: Resolved,
    checked: _Paths,
    source: SourceMap,
    problems: list[Problem],
) -> StepSpec:
    here: KeyPath = ("steps", name)
    params, errors = resolved.params, resolved.errors
    flat = flatten(params)
    known = sorted(k for k in flat if not isinstance(flat[k], dict))
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
        if unresolved((*here, "params", index), pattern):
            continue
        if pattern in unmatched:
            problems.append(
                source.problem(
                    (*here, "params", index),
                    f"no parameter matches '{pattern}'{suggest(pattern, known)}",
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

    outs_raw = [o if isinstance(o, OutSpec) else OutSpec(path=o) for o in step.outs]
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
        cmd=cmd,
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


def _compile_datasets(recipe: Recipe, paths: _Paths) -> dict[str, DatasetSpec]:
    datasets = {}
    for name, dataset in recipe.data.items():
        # DVC fetches a tracked or imported dataset into its path; a plain file is only read
        writes = dataset.dvc is not False or dataset.import_ is not None
        path = paths.check(dataset.path, ("data", name, "path"), writes=writes)
        if path is None:
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
            if overlaps(out, dataset.path):
                problems.append(
                    source.problem(
                        ("data", name, "path"),
                        f"dataset '{name}' ({dataset.path}) is also written by step '{step}'; "
                        "a dataset is an input: read it in deps, or drop it from data",
                    )
                )


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
    steps: dict[str, StepSpec], paths: _Paths, source: SourceMap, problems: list[Problem]
) -> dict[str, str]:
    """Map each out path to its step; report paths written twice or nested in another out, at
    the second writer's entry (in ``outs`` or ``metrics``), naming the first's."""
    producers: dict[str, str] = {}
    first: dict[str, KeyPath] = {}
    for name, spec in steps.items():
        for out in spec.outs:
            here = paths.key_of(name, out.path)
            for other_path, other in producers.items():
                if out.path == other_path:
                    clash = "is also written"
                elif is_within(out.path, other_path):
                    clash = f"is inside '{other_path}', written"
                elif is_within(other_path, out.path):
                    clash = f"holds '{other_path}', written"
                else:
                    continue
                pos = source.locate(first[other_path])
                at = f" at line {pos.line}" if pos else ""
                problems.append(
                    source.problem(
                        here,
                        f"'{out.path}' {clash} by step '{other}' "
                        f"({format_path(first[other_path])}{at}); each path must have one "
                        "producer",
                    )
                )
            if out.path not in producers:
                producers[out.path] = name
                first[out.path] = here
    return producers


def _link(spec: StepSpec, producers: dict[str, str]) -> StepSpec:
    upstream: list[str] = []
    for dep in spec.deps:
        for out, producer in producers.items():
            if producer != spec.name and overlaps(dep, out):
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
