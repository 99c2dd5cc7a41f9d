"""Parameters: params files, Hydra composition, override grammar, per-step selection.

Hydra and OmegaConf are imported inside the functions of ``compose`` and ``overrides`` only, and
the submodules are loaded on first use (PEP 562), so ``import mlbuild`` in a step's code stays
cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.params.compose import compose_config as compose_config
    from mlbuild.params.compose import needs_hydra as needs_hydra
    from mlbuild.params.overrides import BASIC_SWEEPER as BASIC_SWEEPER
    from mlbuild.params.overrides import SweeperInfo as SweeperInfo
    from mlbuild.params.overrides import check_overrides as check_overrides
    from mlbuild.params.overrides import expand_sweeps as expand_sweeps
    from mlbuild.params.overrides import override_value as override_value
    from mlbuild.params.overrides import suggest as suggest
    from mlbuild.params.overrides import sweeps as sweeps
    from mlbuild.params.resolve import ParamSpec as ParamSpec
    from mlbuild.params.resolve import Resolved as Resolved
    from mlbuild.params.resolve import resolve_params as resolve_params
    from mlbuild.params.runtime import PARAMS_ENV as PARAMS_ENV
    from mlbuild.params.runtime import params as params
    from mlbuild.params.selection import UnsafeValueError as UnsafeValueError
    from mlbuild.params.selection import broken as broken
    from mlbuild.params.selection import flatten as flatten
    from mlbuild.params.selection import interpolate as interpolate
    from mlbuild.params.selection import nest as nest
    from mlbuild.params.selection import references as references
    from mlbuild.params.selection import render as render
    from mlbuild.params.selection import select as select
    from mlbuild.params.sweeper_params import sweeper_space as sweeper_space

_LAZY = {
    "compose_config": "compose",
    "needs_hydra": "compose",
    "BASIC_SWEEPER": "overrides",
    "SweeperInfo": "overrides",
    "check_overrides": "overrides",
    "expand_sweeps": "overrides",
    "override_value": "overrides",
    "suggest": "overrides",
    "sweeps": "overrides",
    "ParamSpec": "resolve",
    "Resolved": "resolve",
    "resolve_params": "resolve",
    "PARAMS_ENV": "runtime",
    "params": "runtime",
    "broken": "selection",
    "UnsafeValueError": "selection",
    "flatten": "selection",
    "interpolate": "selection",
    "nest": "selection",
    "references": "selection",
    "render": "selection",
    "select": "selection",
    "sweeper_space": "sweeper_params",
}


__getattr__ = lazy_getattr("mlbuild.params", _LAZY)

__all__ = [  # noqa: RUF022 - grouped by submodule
    "compose_config",
    "needs_hydra",
    "BASIC_SWEEPER",
    "SweeperInfo",
    "check_overrides",
    "expand_sweeps",
    "override_value",
    "suggest",
    "sweeps",
    "ParamSpec",
    "Resolved",
    "resolve_params",
    "PARAMS_ENV",
    "params",
    "broken",
    "UnsafeValueError",
    "flatten",
    "interpolate",
    "nest",
    "references",
    "render",
    "select",
    "sweeper_space",
]
