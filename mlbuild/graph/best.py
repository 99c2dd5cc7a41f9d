"""A step that takes the best params of a search: ``params_from: search.NAME``.

``mlbuild search NAME`` leaves the best trial's params in ``.mlbuild/search/NAME/best.json``
(:func:`best_file`). A step that declares ``params_from: search.NAME`` is compiled with those
params as overrides after the command line's, for that step only: they reach its
``mlbuild.params()`` and ``${params.KEY}``, and enter its fingerprint, so the step re-runs only
when the best params change, and ``plan`` says which ("best params of search `hpo` changed:
train.lr 0.01 → 0.003"). Until the search has found one, the step cannot run (the others can).

Checked when compiling, at ``ml.yaml:LINE:COL``: the search exists and has one objective (a
Pareto front has no one best trial); the step is not the search's own step nor one it depends on
(its trials would then change what they measure). Checked when loading: the step reads at least
one of the searched params, and does not read a params file itself (mlbuild writes the recipe's
params into it, once for every step).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.errors import MlbuildError, Problem
from mlbuild.graph.model import Graph, StepSpec
from mlbuild.nested import leaves
from mlbuild.params import override_value, suggest

if TYPE_CHECKING:
    from mlbuild.recipe import Recipe, SourceMap

BEST_FILE = "best.json"
_MAX_BYTES = 1 << 20  # a best trial's params: a few hundred bytes
# a searched key (mlbuild.recipe.search.PARAM_KEY, not imported: it would import pydantic): the
# keys become overrides, so a '+key', '~key' or 'key=a,b' from a damaged or forged file would
# add, delete or sweep params instead of setting the searched ones
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")


def best_file(meta: Path, search: str) -> Path:
    """Where ``mlbuild search`` leaves the best params of ``search`` (in ``.mlbuild``)."""
    return meta / "search" / search / BEST_FILE


def search_step(search: str) -> str:
    """The name of the step of search ``search`` (``search:hpo``)."""
    return f"search:{search}"


def retake_best(graph: Graph, meta: Path, search: str, load: Callable[[list[str]], Graph]) -> None:
    """Once the step of ``search`` is up to date within a run, compile again, in ``graph``, each
    step taking its best params (they may have changed, or been pending): the steps run after
    it, so none has started. A step whose params no longer fit gets its problem, and fails."""
    for name, spec in list(graph.steps.items()):
        if spec.params_from == search:
            taken = _take(graph, replace(spec, best=None), meta, load)
            if taken.best is not None and taken.best.get("pending"):  # never the recipe's params
                message = f"search '{search}' ran but left no best params to take"
                taken = replace(taken, problems=[[f"steps.{name}.params_from", message]])
            graph.steps[name] = taken


def check_params_from(graph: Graph, recipe: Recipe, source: SourceMap) -> list[Problem]:
    """Each ``params_from`` names a search of one objective that runs no later than the step."""
    problems: list[Problem] = []
    for name, step in graph.steps.items():
        search = step.params_from
        if search is None:
            continue
        key = ("steps", name, "params_from")
        if search not in recipe.search:
            known = list(recipe.search)
            problems.append(
                source.problem(
                    key,
                    f"no search named '{search}'{suggest(search, known)}; searches: "
                    f"{', '.join(known) or 'none (declare one under `search:`)'}",
                )
            )
            continue
        section = recipe.search[search]
        if len(section.objective) > 1:
            problems.append(
                source.problem(
                    key,
                    f"search '{search}' has several objectives: its Pareto front holds no one "
                    "best trial to take params from",
                )
            )
            continue
        target = section.step
        if target in graph.steps and name in graph.upstream_closure([target]):
            where = "is the step of" if name == target else "runs before the step of"
            problems.append(
                source.problem(
                    key,
                    f"step '{name}' {where} search '{search}' ({target}): its best params would "
                    "change what the trials measure; take them in a step that runs after it",
                )
            )
    return problems


def with_best_params(graph: Graph, meta: Path, load: Callable[[list[str]], Graph]) -> Graph:
    """``graph`` with each ``params_from`` step compiled with its search's best params; ``load``
    compiles the recipe for a list of overrides (without taking best params)."""
    takers = [spec for spec in graph.steps.values() if spec.params_from]
    if not takers:
        return graph
    steps = dict(graph.steps)
    for spec in takers:
        steps[spec.name] = _take(graph, spec, meta, load)
    return replace(graph, steps=steps)


def _take(graph: Graph, spec: StepSpec, meta: Path, load: Callable[[list[str]], Graph]) -> StepSpec:
    assert spec.params_from is not None
    search = spec.params_from
    key = f"steps.{spec.name}.params_from"

    def refused(message: str) -> StepSpec:
        return replace(spec, problems=[*spec.problems, [key, message]])

    path = best_file(meta, search)
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        if search_step(search) in graph.steps:  # it runs first, then the step is taken again
            return replace(spec, best={"search": search, "params": {}, "pending": True})
        return refused(
            f"search '{search}' has found no best params in this workspace yet: run "
            f"`mlbuild search {search}`"
        )
    except OSError as exc:
        return refused(f"cannot read {path}: {exc.strerror}")
    best = _parse(raw)
    if best is None:
        return refused(f"{path} is damaged; run `mlbuild search {search}` to write it again")
    written = [dep for dep in spec.deps if dep in graph.param_writes]
    if written:
        return refused(
            f"step '{spec.name}' reads the params file {written[0]} itself, which holds the "
            "recipe's params for every step; read the searched params with mlbuild.params() or "
            "${params.KEY}"
        )
    params: dict[str, Any] = best["params"]
    overrides = [*graph.overrides, *(f"{k}={override_value(v)}" for k, v in params.items())]
    try:
        taken = load(overrides).steps[spec.name]
    except MlbuildError as exc:  # the recipe changed since: a key gone, a value refused
        return refused(
            f"the best params of search '{search}' ({', '.join(overrides[len(graph.overrides) :])}"
            f") do not fit the recipe: {exc.message.splitlines()[0]}"
        )
    read = leaves(taken.params)
    used = {
        k: v for k, v in params.items() if k in read or any(r.startswith(f"{k}.") for r in read)
    }
    if not used:
        return refused(
            f"step '{spec.name}' reads none of the params search '{search}' varies "
            f"({', '.join(params)}); list them in its `params`"
        )
    info = {"search": search, "params": used}
    info.update({k: best[k] for k in ("study", "trial", "run_id") if k in best})
    return replace(taken, params_from=search, best=info)


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The best file's content if it is what ``mlbuild search`` writes, else ``None``."""
    if len(raw) > _MAX_BYTES:
        return None
    try:
        best = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(best, dict) or not isinstance(best.get("params"), dict):
        return None
    params = best["params"]
    if not params or not all(
        isinstance(k, str) and _KEY.fullmatch(k) and _scalar(v) for k, v in params.items()
    ):
        return None
    return best


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)
