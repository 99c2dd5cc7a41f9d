"""How far a study is: its trials counted by state, for the worker's "another trial?" question.

A worker asks before every trial (:mod:`mlbuild.search.runner`). Asking Optuna
(``study.get_trials``) reads every trial that changed since the last look, with its params,
values and attributes, into Optuna's cache, then scans them all: ~15–20 ms of CPU per trial in
a profile of a 30-trial search, a fifth of mlbuild's overhead per trial, and growing with the
study. The answer needs four numbers, which one SQL query on Optuna's tables gives, through the
storage's own engine. The tables are read only when the database holds the schema this was
written for (:data:`mlbuild.search.reader.SCHEMA`); any other is counted through Optuna.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlbuild.search.trial import RETRY_OF

RETRIED = "failed_trial"  # system attribute of the retry of a dead worker's trial (Optuna's)

# per state: the trials, and how many of them are retries (of a dead worker's trial, or of one
# Ctrl-C interrupted); a study's trials only, by its id
_COUNT = (
    "SELECT state, COUNT(*), SUM(CASE WHEN EXISTS ("
    'SELECT 1 FROM trial_system_attributes a WHERE a.trial_id = t.trial_id AND a."key" = :system'
    ") OR EXISTS ("
    'SELECT 1 FROM trial_user_attributes u WHERE u.trial_id = t.trial_id AND u."key" = :user'
    ") THEN 1 ELSE 0 END) FROM trials t WHERE t.study_id = :sid GROUP BY state"
)


@dataclass(frozen=True)
class Progress:
    """A study's trials: ``done`` finished (COMPLETE, PRUNED, FAIL) less the retries among all
    trials (a retry counts when it finishes, the trial it retries not at all), ``running``,
    ``waiting`` (enqueued: a retry, an interrupted trial's parameters)."""

    done: int
    running: int
    waiting: int


class StudyCounter:
    """Counts the trials of one study of an Optuna ``RDBStorage``."""

    def __init__(self, storage: Any, study: Any) -> None:
        from mlbuild.search.reader import SCHEMA

        self._study = study
        self._storage = storage
        self._id: int | None = None
        try:
            if storage.get_current_version() == SCHEMA:
                self._id = int(storage.get_study_id_from_name(study.study_name))
        except Exception:  # an unknown schema or engine: Optuna's own reading counts
            self._id = None

    def progress(self) -> Progress:
        if self._id is None:
            return optuna_progress(self._study)
        import sqlalchemy

        params = {"sid": self._id, "system": RETRIED, "user": RETRY_OF}
        with self._storage.engine.connect() as db:
            rows = db.execute(sqlalchemy.text(_COUNT), params).all()
        counts = {str(state): (int(n), int(retries or 0)) for state, n, retries in rows}
        finished = sum(counts.get(s, (0, 0))[0] for s in ("COMPLETE", "PRUNED", "FAIL"))
        retried = sum(r for _, r in counts.values())
        return Progress(
            done=finished - retried,
            running=counts.get("RUNNING", (0, 0))[0],
            waiting=counts.get("WAITING", (0, 0))[0],
        )


def optuna_progress(study: Any) -> Progress:
    """:class:`Progress` from Optuna's reading of the study (``optuna.Study``)."""
    from mlbuild.search.study import optuna_module

    state = optuna_module().trial.TrialState
    trials = study.get_trials(deepcopy=False)
    finished = sum(1 for t in trials if t.state in (state.COMPLETE, state.PRUNED, state.FAIL))
    retried = sum(1 for t in trials if RETRIED in t.system_attrs or RETRY_OF in t.user_attrs)
    return Progress(
        done=finished - retried,
        running=sum(1 for t in trials if t.state == state.RUNNING),
        waiting=sum(1 for t in trials if t.state == state.WAITING),
    )
