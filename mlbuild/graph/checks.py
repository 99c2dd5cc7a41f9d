"""The checks of a graph that depend on the filesystem, run every time the graph is used.

A compiled graph is cached by the recipe's bytes, but the workspace moves under it: a dep file is
deleted, a directory is replaced by a symlink out of the repository. ``validate``, ``plan`` and
``run`` therefore re-check every recipe path against the fence and every input for presence, and
report all problems at once, located in the recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from mlbuild.data import DataError
from mlbuild.errors import Problem
from mlbuild.graph.model import Graph, StepSpec
from mlbuild.paths import Fence, UnsafePathError


def path_problems(graph: Graph, fence: Fence, names: Iterable[str] | None = None) -> list[Problem]:
    """Every recipe path the fence refuses now (symlinks resolved as the filesystem is): of the
    steps ``names`` (all if ``None``) and of the sections outside ``steps`` — a step that is not
    asked to run is not held back by what another step left behind."""
    if graph.take_fenced(fence):  # compiled in this command, by this fence, a moment ago
        return []
    selected = None if names is None else set(names)
    if selected is not None and selected.issuperset(graph.steps):
        selected = None  # every step: no key to pick out (thousands of paths)
    fence = fence.at_once()  # thousands of paths below a few folders: resolve each folder once
    problems = []
    for use in graph.paths:
        if selected is not None and use.key.startswith("steps.") and not _of(use.key, selected):
            continue
        try:
            fence.check(use.path, writes=use.writes)
        except UnsafePathError as exc:
            problems.append(graph.problem(use.key, exc.message))
    return problems


def _of(key: str, steps: set[str]) -> bool:
    """``key`` (``steps.NAME.deps[0]``) is ``steps.NAME.…`` for a NAME in ``steps``: each dot
    tried as the end of the name, not each name as a prefix (thousands of steps, each paths)."""
    end = key.find(".", len("steps."))
    while end != -1:
        if key[len("steps.") : end] in steps:
            return True
        end = key.find(".", end + 1)
    return False


def missing_inputs(
    graph: Graph, root: Path, names: Iterable[str], kind: Callable[[str], str]
) -> list[Problem]:
    """Deps of steps ``names`` that no step makes and no file provides, their plain datasets that
    are missing, and a missing lock file. ``kind`` says whether a dataset is a plain file."""
    names = list(names)
    problems = [
        missing_dep(graph, graph.steps[name], dep)
        for name in names
        for dep in graph.steps[name].deps
        if not produced(graph, dep) and not (root / dep).exists()
    ]
    for dataset in sorted({d for n in names for d in graph.steps[n].data}):
        try:
            plain = kind(dataset) == "file"
        except DataError as exc:  # `dvc: true` for a path DVC does not track
            problems.append(graph.problem(f"data.{dataset}.dvc", exc.message))
            continue
        if plain and not (root / graph.datasets[dataset].path).exists():
            problems.append(missing_dataset(graph, dataset))
    if graph.lock_file is not None and not (root / graph.lock_file).is_file():
        problems.append(missing_lock(graph))
    return problems


def produced(graph: Graph, path: str) -> bool:
    """Some step's output holds ``path``, or lies inside it."""
    return graph.outputs().overlaps_any(path)


def missing_dep(graph: Graph, step: StepSpec, dep: str) -> Problem:
    return dep_problem(
        graph,
        step,
        dep,
        f"'{dep}' does not exist and no step makes it; create the file or add a "
        "step that lists it in outs",
    )


def dep_problem(graph: Graph, step: StepSpec, dep: str, message: str) -> Problem:
    """``message`` about ``dep`` of ``step``, located at the recipe key that declares it."""
    return graph.problem(_key(graph, dep, f"steps.{step.name}.deps["), message)


def missing_lock(graph: Graph) -> Problem:
    lock = graph.lock_file
    return graph.problem(
        _key(graph, lock or "", "environment"),
        f"lock file {lock} does not exist; create it (`pipenv lock` or "
        "`pip freeze > FILE`) or remove it from the recipe",
    )


def missing_dataset(graph: Graph, name: str) -> Problem:
    path = graph.datasets[name].path
    return graph.problem(
        f"data.{name}.path",
        f"dataset '{name}': '{path}' does not exist; add the file, or track it with DVC "
        f"(`dvc add {path}`) so mlbuild can fetch it",
    )


def _key(graph: Graph, path: str, prefix: str) -> str:
    """The recipe key under ``prefix`` that declares ``path`` (``steps.a.deps[2]``); for a step
    another section made (``model:check``), the key in that section that reads it."""
    for use in graph.paths:
        if use.path == path and use.key.startswith(prefix):
            return use.key
    for use in graph.paths:
        if use.path == path and not use.writes and not use.key.startswith("steps."):
            return use.key
    return prefix.rstrip("[")
