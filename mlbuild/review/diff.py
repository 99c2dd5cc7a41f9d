"""The one entry point: two sides named on the command line → a :class:`Report`."""

from __future__ import annotations

from mlbuild.graph import Workspace
from mlbuild.review.compare import Report, compare
from mlbuild.review.metrics import last_runs
from mlbuild.review.resolve import resolve
from mlbuild.review.revisions import resolve_sides


def diff_report(ws: Workspace, names: list[str], overrides: list[str]) -> Report:
    """Compare the sides ``names`` name (see :func:`resolve_sides`) with ``overrides`` applied
    to both; raises :class:`~mlbuild.errors.UsageError` for a bad revision and
    :class:`~mlbuild.errors.RecipeError` (naming the side) for a bad recipe."""
    ws.ensure_meta()
    side_a, side_b = resolve_sides(ws.root, ws.recipe_path, ws.meta, names)
    a = resolve(side_a, ws, overrides)
    b = resolve(side_b, ws, overrides)
    report = compare(a, b)
    report.metrics = last_runs(ws, b.graph, [side_a, side_b])
    return report
