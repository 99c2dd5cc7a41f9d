"""A search space from a Hydra config written for hydra-optuna-sweeper (``hydra.sweeper.params``).

Teams that already search with the plugin keep their config: each entry is parsed with Hydra's own
override grammar and mapped to a distribution the way the plugin maps it
(``create_optuna_distribution_from_override``), so a study samples what it sampled before:

- ``choice(a, b)`` or ``a,b`` → categorical; ``shuffle(range(…))`` → categorical of its values
- ``range(start, stop, step=s)`` → int (float if any bound is a float) from start to stop, with
  that step — the plugin includes ``stop``, unlike Hydra's basic sweeper
- ``interval(low, high)`` → float; ``tag(log, interval(…))`` on a log scale
- a plain value → fixed for every trial

The result is plain data (``{"type": "float", "low": …}``), the shape of the recipe's ``space``,
which the search package checks and turns into Optuna's distributions.
"""

from __future__ import annotations

from typing import Any

from mlbuild.errors import OverrideError
from mlbuild.params.overrides import first_line


def sweeper_space(params: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{"train.lr": "tag(log, interval(1e-4, 1e-1))"}`` → ``{"train.lr": {"type": "float",
    "low": 0.0001, "high": 0.1, "log": True}}``; a fixed value becomes ``{"type": "fixed",
    "value": "5"}``. Raises :class:`OverrideError` naming the entry Hydra cannot parse or the
    plugin would not take."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob, IntervalSweep, RangeSweep
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    space: dict[str, dict[str, Any]] = {}
    for key, text in params.items():
        where = f"hydra.sweeper.params.{key}: '{text}'"
        try:
            (override,) = parser.parse_overrides([f"{key}={text}"])
        except (OverrideParseException, ValueError) as exc:
            reason = first_line(str(exc))
            raise OverrideError(f"{where} is not valid Hydra syntax: {reason}") from None
        if not override.is_sweep_override():
            space[key] = {"type": "fixed", "value": override.get_value_element_as_str()}
            continue
        value = override.value()
        if isinstance(value, Glob):  # it selects config options: nothing for Optuna to sample
            raise OverrideError(f"{where} {_NOT_TAKEN}")
        if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
            space[key] = {"type": "categorical", "choices": list(override.sweep_iterator())}
        elif isinstance(value, RangeSweep):
            space[key] = _range(value, where)
        elif isinstance(value, IntervalSweep):
            is_int = isinstance(value.start, int) and isinstance(value.end, int)
            space[key] = {
                "type": "int" if is_int else "float",
                "low": value.start,
                "high": value.end,
                "log": "log" in value.tags,
            }
        else:
            raise OverrideError(f"{where} {_NOT_TAKEN}")
    return space


_NOT_TAKEN = (
    "is a sweep hydra-optuna-sweeper does not take; use choice(…), range(…), interval(…) or "
    "tag(log, interval(…))"
)


def _range(value: Any, where: str) -> dict[str, Any]:
    if value.start is None or value.stop is None:
        raise OverrideError(f"{where}: a range needs a start and a stop")
    if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
        return {
            "type": "float",
            "low": float(value.start),
            "high": float(value.stop),
            "step": float(value.step),
        }
    return {"type": "int", "low": value.start, "high": value.stop, "step": value.step}
