"""The graph of each trial, compiled once per search where that is provably the same.

A trial is the target step run with the trial's values as overrides. Compiling the recipe for
each trial's overrides (Hydra's compose, pydantic, the checks) took ~60% of a trial's time beyond
the objective's own process (bench/RESULTS.md, issue 11); the trials of one search differ only in
the searched values. So a worker compiles the graph twice, at two points of the space (the
reference point, each key's first value, and a probe point where every key that can differ
does), and takes the *shape* — that graph with the searched values put at their leaves — when
putting the probe's values into the reference graph gives exactly the graph compiled for the
probe: then the searched values reach the steps only as the values of their own keys (no
interpolation copies them into a command, a path or another key, no config group is selected by
them, no resolver derives anything from them). Otherwise every trial is compiled, as before.

The check is exact for the two points and holds for every point when a value is only a leaf:
a string choice that could interpolate (``${…}``) refuses the shape outright, and every choice
of a categorical key is probed (a choice may select a Hydra config group where another does not).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

from mlbuild.errors import MlbuildError
from mlbuild.graph import Graph, Workspace
from mlbuild.params import override_value
from mlbuild.search.space import Param, Scalar
from mlbuild.search.spec import SearchSpec


class TrialGraphs:
    """The graph of a trial of ``spec`` in workspace ``ws``: the shape filled in, or compiled."""

    def __init__(self, ws: Workspace, spec: SearchSpec) -> None:
        self.ws = ws
        self.spec = spec
        self.shape: Graph | None = None
        self._reference = {p.key: p.first() for p in spec.params}
        self.why_compiled = self._take_shape()

    def graph(self, values: dict[str, Scalar]) -> Graph:
        """The graph of the trial of ``values`` (every searched key)."""
        overrides = trial_overrides(self.spec, values)
        if self.shape is None:
            return self.ws.graph(overrides)
        return _filled(self.shape, values, overrides)

    def _take_shape(self) -> str | None:
        """Keep the shape if it is provably each trial's graph; else why not."""
        if any(isinstance(c, str) and "$" in c for p in self.spec.params for c in p.choices):
            return "a categorical choice holds '$', which Hydra may read as an interpolation"
        reference = self.ws.graph(trial_overrides(self.spec, self._reference))
        closure = set(reference.upstream_closure([self.spec.target]))
        for probe in _probes(self.spec.params, self._reference):
            try:
                compiled = self.ws.graph(trial_overrides(self.spec, probe))
            except MlbuildError:  # the recipe refuses a value: each trial finds out its own
                return "a value of the space does not compile"
            filled = _filled(reference, probe, compiled.overrides)
            if _view(filled, closure) != _view(compiled, closure):
                return "the searched values reach more than their own keys"
        self.shape = reference
        return None


def trial_overrides(spec: SearchSpec, values: dict[str, Scalar]) -> list[str]:
    """The overrides of the trial of ``values``: the search's, then one per searched key."""
    return [*spec.trial_overrides_base, *(f"{k}={override_value(v)}" for k, v in values.items())]


def _probes(params: list[Param], reference: dict[str, Scalar]) -> list[dict[str, Scalar]]:
    """Points that move every key that can move: one with a second value of each, and one for
    each further choice of a categorical key."""
    first = {p.key: _other(p, reference[p.key]) for p in params}
    found = [first]
    for param in params:
        if param.kind == "categorical":
            for choice in param.choices:
                if choice not in (reference[param.key], first[param.key]):
                    found.append({**reference, param.key: choice})
    return found


def _other(param: Param, value: Scalar) -> Scalar:
    """A value of ``param``'s space other than ``value`` (``value`` if there is none)."""
    if param.kind == "categorical":
        others = [c for c in param.choices if c != value or type(c) is not type(value)]
        return others[0] if others else value
    assert param.low is not None and param.high is not None
    if param.high == param.low:
        return value
    if param.kind == "int":
        return int(param.high)
    if param.step is not None:
        return param.high
    # an unremarkable value inside the range, unlikely to equal anything else in the recipe
    return param.low + (param.high - param.low) * 0.6180339887498949


def _filled(shape: Graph, values: dict[str, Scalar], overrides: list[str]) -> Graph:
    """``shape`` with each searched key at its value in ``values``."""
    params = copy.deepcopy(shape.params)
    for key, value in values.items():
        _set(params, key.split("."), value)
    steps = {}
    for name, step in shape.steps.items():
        own = _selected(step.params, values)
        steps[name] = step if own is step.params else replace(step, params=own)
    return replace(shape, params=params, steps=steps, overrides=list(overrides))


def _selected(selected: dict[str, Any], values: dict[str, Scalar]) -> dict[str, Any]:
    """A step's selected params (flat keys; a selected subtree is a nested value) with
    ``values`` put in; the same object when the step reads none of them."""
    changed: dict[str, Any] | None = None
    for key, value in values.items():
        for have, held in selected.items():
            if have == key:
                changed = changed if changed is not None else copy.deepcopy(selected)
                changed[have] = value
            elif key.startswith(f"{have}.") and isinstance(held, dict):
                changed = changed if changed is not None else copy.deepcopy(selected)
                _set(changed[have], key[len(have) + 1 :].split("."), value)
    return changed if changed is not None else selected


def _set(tree: dict[str, Any], path: list[str], value: Scalar) -> None:
    for part in path[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            return  # not a leaf of the params: the probe check refuses the shape
        tree = child
    if path[-1] in tree:
        tree[path[-1]] = value


def _view(graph: Graph, closure: set[str]) -> str:
    """What a trial runs of ``graph``: everything but the steps outside the target's closure
    (a step taking the search's best params is compiled with the overrides too)."""
    raw = graph.to_json()
    raw["steps"] = {k: v for k, v in raw["steps"].items() if k in closure}
    return json.dumps(raw, sort_keys=True, default=str)
