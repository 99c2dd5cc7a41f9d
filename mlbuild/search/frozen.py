"""A read-only ``optuna.Study`` over trials already read: what ``search show`` reports on.

Optuna's in-memory storage takes trials one by one and deep-copies each (``add_trials``): for a
study of 1,000 trials that was a sixth of ``search show``'s CPU (bench/RESULTS.md, issue 11).
This storage holds the :class:`~optuna.trial.FrozenTrial` objects as given and answers Optuna's
reading calls from them (the report, importances and plots read nothing else); every writing call
is refused, so nothing can be lost by mistaking it for the stored study.
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

from mlbuild.search.study import optuna_module

_STUDY_ID = 0


def frozen_study(name: str, directions: list[str], trials: list[Any]) -> Any:
    """An ``optuna.Study`` named ``name`` holding ``trials`` (``FrozenTrial``, in number
    order), read-only."""
    optuna = optuna_module()
    storage = _storage_class()(name, directions, trials)
    return optuna.Study(study_name=name, storage=storage)


_CLASS: Any = None


def _storage_class() -> Any:
    """The storage class, defined on first use: its base is Optuna's, imported lazily."""
    global _CLASS  # noqa: PLW0603 - one class per process, built when Optuna is first needed
    if _CLASS is not None:
        return _CLASS
    optuna = optuna_module()
    from optuna.storages import BaseStorage
    from optuna.study import StudyDirection
    from optuna.study._frozen import FrozenStudy

    class FrozenStorage(BaseStorage):
        def __init__(self, name: str, directions: list[str], trials: list[Any]) -> None:
            self._name = name
            self._directions = [StudyDirection[d.upper()] for d in directions]
            self._trials = list(trials)
            self._by_id = {t._trial_id: t for t in self._trials}

        def _refuse(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("a study read for a report is read-only")

        create_new_study = delete_study = set_study_user_attr = set_study_system_attr = _refuse
        create_new_trial = set_trial_param = set_trial_state_values = _refuse
        set_trial_intermediate_value = set_trial_user_attr = set_trial_system_attr = _refuse

        def _study(self, study_id: int) -> None:
            if study_id != _STUDY_ID:
                raise KeyError(f"no study with id {study_id}")

        def get_study_id_from_name(self, study_name: str) -> int:
            if study_name != self._name:
                raise KeyError(f"no study named {study_name}")
            return _STUDY_ID

        def get_study_name_from_id(self, study_id: int) -> str:
            self._study(study_id)
            return self._name

        def get_study_directions(self, study_id: int) -> list[Any]:
            self._study(study_id)
            return list(self._directions)

        def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
            self._study(study_id)
            return {}

        def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
            self._study(study_id)
            return {}

        def get_all_studies(self) -> list[Any]:
            return [
                FrozenStudy(
                    study_name=self._name,
                    direction=None,
                    directions=list(self._directions),
                    user_attrs={},
                    system_attrs={},
                    study_id=_STUDY_ID,
                )
            ]

        def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
            self._study(study_id)
            for trial in self._trials:
                if trial.number == trial_number:
                    return int(trial._trial_id)
            raise KeyError(f"no trial number {trial_number}")

        def get_trial(self, trial_id: int) -> Any:
            return self._by_id[trial_id]

        def get_all_trials(
            self,
            study_id: int,
            deepcopy: bool = True,
            states: Container[Any] | None = None,
        ) -> list[Any]:
            self._study(study_id)
            found: Sequence[Any] = self._trials
            if states is not None:
                found = [t for t in found if t.state in states]
            return copy.deepcopy(list(found)) if deepcopy else list(found)

    del optuna
    _CLASS = FrozenStorage
    return _CLASS
