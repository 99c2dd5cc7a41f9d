"""The ``search`` kind: ``mlbuild run search:hpo`` runs ``mlbuild search hpo`` as the step's
process, and keeps the best trial as the step's result.

The search runs in its own process (``python -m mlbuild.cli.main search NAME``), so a run treats
it as any step: its output is streamed to the step's log, Ctrl-C stops it (the study stays
resumable), ``--keep-going`` and the run record see one step. The trials run in the search's
worker copies, as ``mlbuild search`` runs them; the step's result data is the best trial (its
params, value, number, run id and study), also left in ``.mlbuild/search/NAME/best.json`` for
the steps that take it (``params_from: search.NAME``), which then compile again with it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar

from mlbuild import atomic
from mlbuild.exec.context import KindContext
from mlbuild.exec.kinds import KindResult, StepFailure
from mlbuild.graph import Graph, StepSpec, Workspace
from mlbuild.graph.best import best_file, retake_best
from mlbuild.graph.compiled import load_graph

_MAX_BYTES = 1 << 20


class SearchKind:
    name: ClassVar[str] = "search"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        search = spec.config["search"]
        ws = ctx.workspace
        best_file(ws.meta, search).unlink(missing_ok=True)  # what this run finds, nothing older
        argv = [
            sys.executable,
            "-m",
            "mlbuild.cli.main",
            "-f",
            str(ws.recipe_path),
            "search",
            search,
            *ctx.graph.overrides,
        ]
        run = ctx.run_process(argv, what=f"search {search}")
        return KindResult(data=_best(ws, search), duration=run.duration)

    def describe(self, spec: StepSpec) -> str:
        declared = spec.config["declared"]
        trials = declared.get("n_trials")
        count = f"{trials} trials" if trials is not None else "trials"
        return f"search {spec.config['search']}: {count} of {declared['step']}"

    def settled(
        self, spec: StepSpec, data: dict[str, Any], workspace: Workspace, graph: Graph
    ) -> None:
        search = spec.config["search"]
        best = data.get("best")
        path = best_file(workspace.meta, search)
        if isinstance(best, dict) and not _same_study(_read(path), best):
            # a cache hit in a clone: the best params come from the action cache's entry. A file
            # of the same study is never replaced: `mlbuild search` (a timeout, a worker
            # elsewhere) may have found a better trial in it since this result was stored; a
            # file of another study (the search's space or code changed, then changed back) is
            # another search's answer
            atomic.write_json(path, best)
        retake_best(
            graph,
            workspace.meta,
            search,
            lambda overrides: load_graph(
                workspace.recipe_path,
                workspace.meta,
                workspace.cache.hasher,
                overrides,
                cache=workspace.cache.root,
                best=False,
            ),
        )


def _best(ws: Workspace, search: str) -> dict[str, Any]:
    """The result: the best trial ``mlbuild search`` left (``None`` for several objectives)."""
    path = best_file(ws.meta, search)
    best = _read(path)
    if best is None and path.exists():
        raise StepFailure(f"search {search} left an unreadable {path}")
    return {"best": best}


def _same_study(found: dict[str, Any] | None, best: dict[str, Any]) -> bool:
    return found is not None and "study" in best and found.get("study") == best["study"]


def _read(path: Any) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_BYTES + 1)
    except OSError:
        return None
    try:
        loaded = json.loads(raw) if len(raw) <= _MAX_BYTES else None
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None
