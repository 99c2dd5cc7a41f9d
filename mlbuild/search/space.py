"""The search space as plain data: one :class:`Param` per searched key, from the recipe's
``space`` or a hydra-optuna-sweeper config, turned into Optuna's distributions and back into
overrides. Optuna is imported only by :func:`distribution` and :func:`suggest`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Param:
    """One searched parameter: ``kind`` is ``float``, ``int`` or ``categorical``."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Scalar] = field(default_factory=list)

    @property
    def is_continuous(self) -> bool:
        return self.kind == "float" and self.step is None

    def grid(self) -> list[Scalar]:
        """Every value of a discrete range, for the grid sampler."""
        if self.kind == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None and self.step is not None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [_tidy(v) for v in values]

    def first(self) -> Scalar:
        """A value of the space that stands in for the searched one where none is sampled (the
        study's fingerprint)."""
        return self.choices[0] if self.kind == "categorical" else self.low

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"one of {', '.join(map(str, self.choices))}"
        scale = ", log" if self.log else (f", step {self.step:g}" if self.step else "")
        return f"{self.kind} {self.low:g}..{self.high:g}{scale}"


def from_recipe(key: str, raw: Any) -> Param:
    """A :class:`Param` from a validated recipe distribution (a model, or a list of choices)."""
    if isinstance(raw, list):
        return Param(key, "categorical", choices=list(raw))
    kind = raw.type
    if kind == "categorical":
        return Param(key, kind, choices=list(raw.choices))
    step = None if kind == "float" and raw.step is None else raw.step
    if kind == "int" and raw.log:
        step = None
    return Param(key, kind, low=raw.low, high=raw.high, log=raw.log, step=step)


def distribution(param: Param) -> optuna.distributions.BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.kind == "categorical":
        return CategoricalDistribution(param.choices)
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        return IntDistribution(
            int(param.low), int(param.high), log=param.log, step=int(param.step or 1)
        )
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def suggest(trial: optuna.Trial, param: Param) -> Scalar:
    """The trial's value for ``param``; Optuna records it with its distribution."""
    if param.kind == "categorical":
        return trial.suggest_categorical(param.key, param.choices)
    assert param.low is not None and param.high is not None
    if param.kind == "int":
        return trial.suggest_int(
            param.key, int(param.low), int(param.high), step=int(param.step or 1), log=param.log
        )
    return trial.suggest_float(param.key, param.low, param.high, step=param.step, log=param.log)


def _tidy(value: float) -> float:
    """``0.30000000000000004`` → ``0.3``: grid points as a person would write them."""
    return float(f"{value:.12g}")
