"""Compile a validated recipe and its composed params into a :class:`Graph`, or report all problems.

Each recipe section that makes steps is compiled by its registered compiler
(:mod:`mlbuild.graph.kinds`: ``steps:`` → commands, ``model:`` → the model check, …). Then, for
every step whatever its kind: every path passes the workspace's :class:`~mlbuild.paths.Fence`
(inside the repository with symlinks resolved, away from ``.git``, ``.mlbuild``, the cache, and —
for what the engine writes — the recipe, its params files and Hydra's config); no two steps write
one path; no dataset is written by a step; there is no cycle. When anything is wrong, the inputs
``plan`` would miss (a dep no step makes, a lock file) are reported with it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.data import DatasetSpec, resolve_kind
from mlbuild.errors import Problem, RecipeError
from mlbuild.graph.best import check_params_from
from mlbuild.graph.checks import missing_inputs
from mlbuild.graph.kinds import CompileContext, RecipePaths, section_compilers
from mlbuild.graph.model import Graph, ServedModel, StepSpec
from mlbuild.graph.packaging import compile_package
from mlbuild.graph.same_data import source_positions
from mlbuild.params import Resolved
from mlbuild.paths import Fence, PathIndex, UnsafePathError, is_within, normalise
from mlbuild.recipe import (
    RECIPE_FILE,
    KeyPath,
    ParamSources,
    Recipe,
    ServingModel,
    SourceMap,
    format_path,
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
    # every path of the recipe checked at one moment: each folder's symlinks resolved once
    fence = Fence(root, protected, cache).at_once()
    paths = RecipePaths(fence, source, problems)
    config_dir = _config_dir_below_root(recipe)
    if config_dir is not None:
        paths.check(config_dir, ("params", "config_dir"), writes=False)
    datasets = _compile_datasets(recipe, paths)
    context = CompileContext(
        recipe=recipe,
        source=source,
        resolved=resolved,
        paths=paths,
        datasets=datasets,
        overrides=[*recipe.overrides, *overrides],
        env_hashes=env_hashes or {},
        problems=problems,
    )
    steps: dict[str, StepSpec] = {}
    declared: dict[str, KeyPath] = {}
    finishing: list[tuple[Any, str]] = []
    for compiler in section_compilers():
        value = getattr(recipe, compiler.section)
        if value is None:
            continue
        for spec in compiler.compile(value, context):
            declared[spec.name] = compiler.declared_at(spec)
            if spec.name in steps:  # a compiler's bug: kind-made names carry their section
                raise AssertionError(f"two sections make a step named {spec.name!r}")
            steps[spec.name] = spec
            if hasattr(compiler, "finish"):
                finishing.append((compiler, spec.name))
    for compiler, name in finishing:
        steps[name] = compiler.finish(steps[name], steps)
    producers = _check_outs(steps, declared, paths, source, problems)
    _check_data_not_produced(datasets, producers, source, problems)
    model = _compile_model(recipe.name, recipe.model, producers, paths, source, problems)
    tests = _compile_tests(recipe, paths)
    env = recipe.environment
    package = compile_package(recipe, paths)
    lock = pipfile = None
    if env is not None and env.pipfile:
        pipfile = paths.check(env.pipfile, ("environment", "pipfile"), writes=False)
        if pipfile is not None:
            beside = str(PurePosixPath(pipfile).parent / "Pipfile.lock")
            lock = paths.check(beside, ("environment", "pipfile"), writes=False)
    elif env is not None and env.requirements:
        lock = paths.check(env.requirements, ("environment", "requirements"), writes=False)
    positions, lines = source_positions(source)  # renewed when only they change: same_data
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
        remote_cache=recipe.cache.model_dump() if recipe.cache else None,
        positions=positions,
        lines=lines,
        model=model,
        param_writes=dict(resolved.writes),
        sweeper=dict(resolved.sweeper) if resolved.sweeper else None,
        hydra_output_dir=resolved.output_dir,
        paths=paths.uses,
        protected=fence.protected,
        tests=tests,
        pipfile=pipfile,
        isolated=env.isolated if env else False,
        package=package,
        executors=recipe.executors.model_dump(exclude_none=True) if recipe.executors else {},
    )
    if problems:
        # all at once: what `plan` would refuse about inputs too, not only the recipe's shape
        problems += missing_inputs(
            graph, root, list(steps), lambda name: resolve_kind(root, datasets[name])
        )
        raise RecipeError(_sorted(problems))
    linked = {name: _after_search(_link(spec, producers), steps) for name, spec in steps.items()}
    ordered = _order(linked, source)
    graph = Graph(**{**graph.__dict__, "steps": {name: linked[name] for name in ordered}})
    problems += check_params_from(graph, recipe, source)
    if problems:
        raise RecipeError(_sorted(problems))
    # every path in graph.paths passed `fence` just now: the command's check_inputs need not
    # sweep the same tree again (Graph.take_fenced)
    return graph.mark_fenced(fence)


def _after_search(spec: StepSpec, steps: dict[str, StepSpec]) -> StepSpec:
    """A step taking a search's best params runs after that search's step, when there is one."""
    search = f"search:{spec.params_from}" if spec.params_from else None
    if search is None or search not in steps or search in spec.upstream:
        return spec
    return replace(spec, upstream=sorted([*spec.upstream, search]))


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


def _compile_model(
    project: str,
    section: ServingModel | None,
    producers: PathIndex[str],
    paths: RecipePaths,
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
        if not producers.holding(normal):
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


def _compile_tests(recipe: Recipe, paths: RecipePaths) -> dict[str, dict[str, Any]]:
    """The ``tests:`` section as plain data, each path it names checked like every recipe path
    (a test reads them; mlbuild.testing interprets the rest)."""
    tests = {}
    for name, test in recipe.tests.items():
        config = test.model_dump(mode="json")
        for key in ("file", "path"):
            if isinstance(config.get(key), str):
                config[key] = paths.check(config[key], ("tests", name, key), writes=False)
        config["deps"] = [
            paths.check(dep, ("tests", name, "deps", index), writes=False)
            for index, dep in enumerate(config["deps"])
        ]
        tests[name] = config
    return tests


def _compile_datasets(recipe: Recipe, paths: RecipePaths) -> dict[str, DatasetSpec]:
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


def _check_data_not_produced(
    datasets: dict[str, DatasetSpec],
    producers: PathIndex[str],
    source: SourceMap,
    problems: list[Problem],
) -> None:
    for name, dataset in datasets.items():
        for _, step in producers.overlapping(dataset.path):
            problems.append(
                source.problem(
                    ("data", name, "path"),
                    f"dataset '{name}' ({dataset.path}) is also written by step '{step}'; "
                    "a dataset is an input: read it in deps, or drop it from data",
                )
            )


def _check_outs(
    steps: dict[str, StepSpec],
    declared: dict[str, KeyPath],
    paths: RecipePaths,
    source: SourceMap,
    problems: list[Problem],
) -> PathIndex[str]:
    """Index each out path by its step; report paths written twice or nested in another out, at
    the second writer's entry (in ``outs`` or ``metrics``), naming the first's."""
    producers: dict[str, str] = {}
    index: PathIndex[str] = PathIndex()
    first: dict[str, KeyPath] = {}
    for name, spec in steps.items():
        for out in spec.outs:
            here = paths.key_of(out.path, declared[name])
            for other_path, other in index.overlapping(out.path):
                if out.path == other_path:
                    clash = "is also written"
                elif is_within(out.path, other_path):
                    clash = f"is inside '{other_path}', written"
                else:
                    clash = f"holds '{other_path}', written"
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
                index.add(out.path, name)
                first[out.path] = here
    return index


def _link(spec: StepSpec, producers: PathIndex[str]) -> StepSpec:
    upstream: list[str] = []
    for dep in spec.deps:
        for _, producer in producers.overlapping(dep):
            if producer != spec.name:
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
