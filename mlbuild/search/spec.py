"""A search as the engine runs it: the recipe's ``search.NAME`` checked against the compiled
graph, as plain data. No Optuna here: everything wrong is reported before any trial starts, each
problem at its ``ml.yaml:LINE:COL``.

Checked beyond the recipe's own schema (which already refuses ``low > high``, a log range
touching 0, an unknown sampler, a grid over a continuous range): the target step exists and
declares metrics files; each searched key is a parameter that the target or a step it depends on
reads; a ``space: hydra`` config composes, parses and fits the sampler.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlbuild.errors import OverrideError, Problem, RecipeError, UsageError
from mlbuild.search.space import Param, from_recipe

if TYPE_CHECKING:
    from mlbuild.graph import Graph, Workspace
    from mlbuild.recipe import Search, SourceMap

_PARSE_VERSION = 1  # of how load_search reads the recipe: entries of another are not read
HEARTBEAT_ENV = "MLBUILD_SEARCH_HEARTBEAT"  # seconds between a worker's heartbeats (default 10)


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" or "minimize"


@dataclass(frozen=True)
class SearchSpec:
    """One search, resolved: what a worker needs to run trials, and nothing of pydantic."""

    name: str
    recipe: str  # the recipe's name
    target: str
    objectives: list[Objective]
    params: list[Param]
    overrides: list[str]  # the search's and the command line's, before each trial's own
    fixed: list[str] = field(default_factory=list)  # fixed entries of hydra.sweeper.params
    sampler: str = "tpe"
    seed: int | None = None
    pruner: str = "median"
    n_trials: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    metrics_files: list[str] = field(default_factory=list)  # the target's, for messages

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def trial_overrides_base(self) -> list[str]:
        return [*self.overrides, *self.fixed]

    def grid(self) -> dict[str, list[Any]]:
        return {p.key: p.grid() for p in self.params}

    def limit(self) -> int | None:
        """Trials the study holds when done: ``n_trials``, else the grid's size."""
        if self.n_trials is not None or self.sampler != "grid":
            return self.n_trials
        size = 1
        for values in self.grid().values():
            size *= len(values)
        return size


def heartbeat() -> int:
    """Seconds between heartbeats of a running trial; a trial silent for 3 of them is failed
    and retried."""
    raw = os.environ.get(HEARTBEAT_ENV, "10")
    if not raw.isdigit() or not 1 <= int(raw) <= 3600:
        raise UsageError(f"{HEARTBEAT_ENV} must be a whole number of seconds from 1 to 3600")
    return int(raw)


def load_search(ws: Workspace, name: str, overrides: list[str]) -> tuple[SearchSpec, Graph]:
    """The search ``name`` of the workspace's recipe with the command line's ``overrides``, and
    the graph its trials start from; raises :class:`RecipeError` with every problem found."""
    from mlbuild import __version__
    from mlbuild.params import suggest
    from mlbuild.recipe.limits import read_limited
    from mlbuild.recipe.structure import parse_cached

    base = ws.graph(overrides)  # the recipe is valid, and named as every message names it
    text = read_limited(ws.recipe_path, base.recipe_file).decode("utf-8")
    # validated once per structure of the recipe (pydantic's schemas cost ~0.3 s of every
    # `search show`); a search's section is structure, so an edit to it is validated anew
    recipe, source = parse_cached(
        text, base.recipe_file, ws.meta / "recipes", f"{__version__}/search-{_PARSE_VERSION}"
    )
    searches = recipe.search
    if name not in searches:
        if not searches:
            raise UsageError(
                f"{source.file} declares no search; add one under `search:` (see `mlbuild schema`)"
            )
        raise UsageError(
            f"no search named '{name}'{suggest(name, list(searches))}; searches: "
            f"{', '.join(searches)}"
        )
    section = searches[name]
    graph = ws.graph([*section.overrides, *overrides]) if section.overrides else base
    problems: list[Problem] = []
    here = ("search", name)
    target = section.step
    if target not in graph.steps:
        steps = graph.default_targets()  # a search's own step is no target
        problems.append(
            source.problem(
                (*here, "step"),
                f"no step named '{target}'{suggest(target, steps)}; steps: {', '.join(steps)}",
            )
        )
        raise RecipeError(problems)
    spec_metrics = graph.steps[target].metrics
    if not spec_metrics:
        problems.append(
            source.problem(
                (*here, "objective"),
                f"step '{target}' declares no metrics file, where the objective "
                f"{', '.join(section.objective)} would be read; add it to the step's `metrics`",
            )
        )
    params, fixed = _space(section, graph, source, here, problems)
    for param in params:
        own = section.space != "hydra"  # else: the value `hydra`, as the config's problems
        key = (*here, "space", param.key) if own else (*here, "space")
        message = _unread(param.key, graph, target)
        if message:
            problems.append(source.problem(key, message, at_key=own))
    if problems:
        raise RecipeError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    from mlbuild.recipe import parse_duration

    pruner = section.pruner or ("median" if len(section.objective) == 1 else "none")
    spec = SearchSpec(
        name=name,
        recipe=recipe.name,
        target=target,
        objectives=[Objective(m, d) for m, d in section.objective.items()],
        params=params,
        overrides=[*section.overrides, *overrides],
        fixed=fixed,
        sampler=section.sampler,
        seed=section.seed,
        pruner=pruner,
        n_trials=section.n_trials,
        timeout=parse_duration(section.timeout) if section.timeout is not None else None,
        storage=section.storage,
        study=section.study,
        metrics_files=list(spec_metrics),
    )
    return spec, graph


def _space(
    section: Search,
    graph: Graph,
    source: SourceMap,
    here: tuple[str, ...],
    problems: list[Problem],
) -> tuple[list[Param], list[str]]:
    """The searched params, from the recipe or the Hydra config, and fixed overrides."""
    if section.space != "hydra":
        return [from_recipe(key, raw) for key, raw in section.space.items()], []
    where = (*here, "space")
    sweeper = graph.sweeper
    if not sweeper or not sweeper.get("params"):
        problems.append(
            source.problem(
                where,
                "the Hydra config has no hydra.sweeper.params to take the space from; select "
                "the config that holds them with the search's `overrides` (+search=optuna)",
            )
        )
        return [], []
    from mlbuild.params import sweeper_space

    try:
        raw = sweeper_space(dict(sweeper["params"]))
    except OverrideError as exc:
        problems.append(source.problem(where, exc.message))
        return [], []
    params: list[Param] = []
    fixed: list[str] = []
    for key, entry in raw.items():
        if entry["type"] == "fixed":
            fixed.append(f"{key}={entry['value']}")
            continue
        checked = _checked(key, entry, source, where, problems)
        if checked is not None:
            params.append(checked)
    if section.sampler == "grid":
        continuous = [p.key for p in params if p.is_continuous]
        if continuous:
            problems.append(
                source.problem(
                    (*here, "sampler"),
                    f"the grid sampler needs a discrete space, but {', '.join(continuous)} is "
                    "a continuous interval in hydra.sweeper.params; use range(…) or choice(…), "
                    "or another sampler",
                )
            )
    return params, fixed


def _checked(
    key: str,
    entry: dict[str, Any],
    source: SourceMap,
    where: tuple[str, ...],
    problems: list[Problem],
) -> Param | None:
    """A sweeper entry checked by the same rules as the recipe's own space."""
    from pydantic import TypeAdapter, ValidationError

    from mlbuild.recipe.search import Distribution

    try:
        model = TypeAdapter(Distribution).validate_python(entry)
    except ValidationError as exc:
        reason = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        problems.append(source.problem(where, f"hydra.sweeper.params.{key}: {reason}"))
        return None
    return from_recipe(key, model)


def _unread(key: str, graph: Graph, target: str) -> str | None:
    """Why searching ``key`` would change nothing the target depends on, if so."""
    from mlbuild.params import flatten, suggest

    flat = flatten(graph.params)
    if key not in flat:
        known = sorted(k for k, v in flat.items() if not isinstance(v, dict))
        return f"no parameter '{key}'{suggest(key, known)}; a searched key must be a parameter"
    closure = graph.upstream_closure([target])
    for name in closure:
        for selected in graph.steps[name].params:
            if key == selected or key.startswith(f"{selected}.") or selected.startswith(f"{key}."):
                return None
    return (
        f"no step reads '{key}': neither '{target}' nor a step it depends on "
        f"({', '.join(n for n in closure if n != target) or 'none'}) lists it in `params`, so "
        "every trial would run the same"
    )
