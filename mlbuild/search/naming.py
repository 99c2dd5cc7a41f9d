"""The default study name: the recipe's name, the search's, and a fingerprint of everything the
search does not vary.

Results of one study must be comparable: edit the code, the data, a parameter the search does
not vary, the lock file or the objective, and the next ``mlbuild search`` starts a new study
instead of mixing its trials with the old ones; so does changing the space. Raising ``n_trials``
or changing the sampler keeps the study (extending it). The fingerprint covers every step the
target depends on, as its own fingerprint does — command, env, the params it reads, its source
files' content hashes, the data versions, outputs, Python and the lock file — with each searched
key set to the first value of its range, and an upstream output standing for its producer's
inputs (so nothing has to run first).
"""

from __future__ import annotations

import json

from mlbuild.cache import hash_bytes
from mlbuild.graph import Graph, Workspace, components
from mlbuild.params import override_value
from mlbuild.paths import overlaps
from mlbuild.search.spec import SearchSpec


def default_study_name(ws: Workspace, spec: SearchSpec) -> str:
    """``RECIPE.SEARCH.FINGERPRINT`` (12 hex digits), or the recipe's ``study:``."""
    if spec.study:
        return spec.study
    graph = ws.graph(reference_overrides(spec))
    return f"{spec.recipe}.{spec.name}.{study_fingerprint(ws, graph, spec)[:12]}"


def reference_overrides(spec: SearchSpec) -> list[str]:
    """The overrides of a trial at the first value of every searched range."""
    return [
        *spec.trial_overrides_base,
        *(f"{p.key}={override_value(p.first())}" for p in spec.params),
    ]


def study_fingerprint(ws: Workspace, graph: Graph, spec: SearchSpec) -> str:
    closure = graph.upstream_closure([spec.target])
    producers = {
        out.path: name for name, step in graph.steps.items() for out in step.outs if name in closure
    }
    lock = ws.cache.hasher.digest(graph.lock_file) if graph.lock_file else None
    planner = ws.planner(graph)
    parts = []
    for name in closure:
        step = graph.steps[name]
        deps: dict[str, str | None] = {}
        for dep in step.deps:
            made_by = [p for out, p in producers.items() if overlaps(dep, out)]
            if made_by:
                deps[dep] = "output of " + ",".join(sorted(made_by))
            else:
                digest = ws.cache.hasher.digest(dep)
                deps[dep] = digest.value if digest else None
        data = planner.data_versions(step)
        parts.append([name, components(graph, step, deps, lock.value if lock else None, data)])
    ws.save_state()
    # the space too: Optuna refuses a categorical whose choices changed within a study, and
    # trials drawn from two spaces do not compare
    space = [[p.key, p.kind, p.low, p.high, p.log, p.step, p.choices] for p in spec.params]
    objectives = [[o.metric, o.direction] for o in spec.objectives]
    key = [spec.recipe, spec.name, spec.target, objectives, space]
    return hash_bytes(json.dumps([key, parts], sort_keys=True, default=str).encode())
