"""What a study amounts to, for people: the best trial (the Pareto front for several objectives),
the top trials, the parameters' importances, and Optuna's own plots as HTML files.

Read from the study's storage only; a study of 1,000 trials is summarised in well under a second
(``bench/bench_search.py``). Importances use Optuna's PED-ANOVA evaluator, which is fast at any
study size; the plots need plotly, loaded only with ``--plots``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.errors import UsageError
from mlbuild.extras import require
from mlbuild.search.spec import SearchSpec
from mlbuild.search.study import optuna_module

if TYPE_CHECKING:
    import optuna


@dataclass
class TrialRow:
    number: int
    state: str  # complete, pruned, fail, running, waiting
    values: list[float] | None
    params: dict[str, Any]
    run_id: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "state": self.state,
            "values": self.values,
            "params": self.params,
            "run_id": self.run_id,
            "error": self.error,
        }


@dataclass
class StudyReport:
    study: str
    objectives: list[list[str]]  # [metric, direction]
    counts: dict[str, int]
    best: list[TrialRow]  # one trial, or the Pareto front
    top: list[TrialRow]
    importances: dict[str, dict[str, float]] = field(default_factory=dict)  # metric → param → imp

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "objectives": [{"metric": m, "direction": d} for m, d in self.objectives],
            "counts": self.counts,
            "best": [t.to_json() for t in self.best],
            "top": [t.to_json() for t in self.top],
            "importances": self.importances,
        }


def study_report(study: optuna.Study, spec: SearchSpec, top: int) -> StudyReport:
    optuna = optuna_module()
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state == state.COMPLETE]
    sign = [1.0 if o.direction == "minimize" else -1.0 for o in spec.objectives]
    ranked = sorted(complete, key=lambda t: [s * v for s, v in zip(sign, t.values, strict=False)])
    if len(spec.objectives) == 1:
        best = ranked[:1]
    else:
        best = sorted(study.best_trials, key=lambda t: t.number)
    return StudyReport(
        study=study.study_name,
        objectives=[[o.metric, o.direction] for o in spec.objectives],
        counts=counts,
        best=[_row(t) for t in best],
        top=[_row(t) for t in ranked[:top]],
        importances=_importances(optuna, study, spec, len(complete)),
    )


def _row(trial: optuna.trial.FrozenTrial) -> TrialRow:
    return TrialRow(
        number=trial.number,
        state=trial.state.name.lower(),
        values=list(trial.values) if trial.values is not None else None,
        params=dict(trial.params),
        run_id=trial.user_attrs.get("run_id"),
        error=trial.user_attrs.get("error"),
    )


def _importances(
    optuna: Any, study: optuna.Study, spec: SearchSpec, complete: int
) -> dict[str, dict[str, float]]:
    """Each param's importance for each objective; none before two trials finished, nor for a
    space of one parameter (its importance is 1 by definition)."""
    if complete < 2 or len(spec.params) < 2:
        return {}
    importance = importance_module()
    evaluator = importance.PedAnovaImportanceEvaluator()
    found: dict[str, dict[str, float]] = {}
    for index, objective in enumerate(spec.objectives):
        target = None if len(spec.objectives) == 1 else (lambda t, i=index: t.values[i])
        try:
            values = importance.get_param_importances(study, evaluator=evaluator, target=target)
        except (ValueError, RuntimeError):  # too few distinct values to tell
            continue
        found[objective.metric] = {k: round(float(v), 4) for k, v in values.items()}
    return found


def importance_module() -> Any:
    """``optuna.importance`` without scikit-learn: its package imports the fANOVA evaluator,
    which imports scikit-learn (3 s here) though mlbuild uses PED-ANOVA, which needs none.
    Optuna imports it through ``try_import``, so an unimportable scikit-learn only leaves fANOVA
    unusable."""
    import sys

    if "optuna.importance" in sys.modules or "sklearn" in sys.modules:
        return sys.modules.get("optuna.importance") or optuna_module().importance
    sys.modules["sklearn"] = None  # type: ignore[assignment]
    try:
        import optuna.importance
    finally:
        del sys.modules["sklearn"]
    return optuna.importance


PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "pareto_front")


def write_plots(study: optuna.Study, spec: SearchSpec, folder: Path) -> list[Path]:
    """Optuna's plots of ``study`` as standalone HTML files in ``folder``; the Pareto front for
    several objectives, the history and importances for one."""
    require("plotly", "search", "plots of a search")
    optuna = optuna_module()
    importance_module()  # before the plots import it, with scikit-learn
    vis = optuna.visualization
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        raise UsageError(f"study '{study.study_name}' has no finished trial to plot yet")
    folder.mkdir(parents=True, exist_ok=True)
    names = [o.metric for o in spec.objectives]
    figures: dict[str, Any] = {}
    if len(names) == 1:
        figures["optimization_history"] = vis.plot_optimization_history(study, target_name=names[0])
        if len(spec.params) >= 2 and len(complete) >= 2:
            figures["param_importances"] = vis.plot_param_importances(
                study, evaluator=importance_module().PedAnovaImportanceEvaluator()
            )
        figures["parallel_coordinate"] = vis.plot_parallel_coordinate(study, target_name=names[0])
    else:
        figures["pareto_front"] = vis.plot_pareto_front(study, target_names=names)
        for index, name in enumerate(names):
            figures[f"parallel_coordinate_{name}"] = vis.plot_parallel_coordinate(
                study, target=lambda t, i=index: t.values[i], target_name=name
            )
    written = []
    for name, figure in figures.items():
        path = folder / f"{name}.html"
        figure.write_html(str(path), include_plotlyjs=True, full_html=True)
        written.append(path)
    return written
