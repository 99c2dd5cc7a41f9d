"""The best params a search found, left where a step that takes them reads them.

After each ``mlbuild search NAME`` (or ``--worker``), ``.mlbuild/search/NAME/best.json`` holds the
best trial of the study: its params (flat keys), value, number and run id. A step declaring
``params_from: search.NAME`` runs with those params (:mod:`mlbuild.graph.best`). A search of
several objectives has no one best trial and writes none (the recipe refuses ``params_from`` it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild import atomic
from mlbuild.graph import Workspace
from mlbuild.graph.best import best_file

if TYPE_CHECKING:
    from mlbuild.search.results import StudyReport


def write_best(ws: Workspace, name: str, report: StudyReport) -> bool:
    """Leave the best trial of ``report`` for the steps that take it; ``False`` if there is
    none (no trial finished, or several objectives)."""
    if len(report.objectives) != 1 or not report.best:
        return False
    best = report.best[0]
    atomic.write_json(
        best_file(ws.meta, name),
        {
            "search": name,
            "study": report.study,
            "trial": best.number,
            "run_id": best.run_id,
            "value": best.values[0] if best.values else None,
            "params": best.params,
        },
    )
    return True
