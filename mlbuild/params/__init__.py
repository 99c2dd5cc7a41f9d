"""Parameters: Hydra composition, override grammar, per-step selection and interpolation.

Hydra and OmegaConf are imported inside the functions of ``compose`` only, and the submodules are
loaded on first use (PEP 562), so ``import mlbuild`` in a step's code stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

if TYPE_CHECKING:
    from mlbuild.params.compose import check_overrides as check_overrides
    from mlbuild.params.compose import compose_params as compose_params
    from mlbuild.params.compose import expand_sweeps as expand_sweeps
    from mlbuild.params.compose import needs_hydra as needs_hydra
    from mlbuild.params.compose import suggest as suggest
    from mlbuild.params.runtime import PARAMS_ENV as PARAMS_ENV
    from mlbuild.params.runtime import params as params
    from mlbuild.params.selection import UnsafeValueError as UnsafeValueError
    from mlbuild.params.selection import flatten as flatten
    from mlbuild.params.selection import interpolate as interpolate
    from mlbuild.params.selection import nest as nest
    from mlbuild.params.selection import references as references
    from mlbuild.params.selection import render as render
    from mlbuild.params.selection import select as select

_LAZY = {
    "check_overrides": "compose",
    "compose_params": "compose",
    "expand_sweeps": "compose",
    "needs_hydra": "compose",
    "suggest": "compose",
    "PARAMS_ENV": "runtime",
    "params": "runtime",
    "UnsafeValueError": "selection",
    "flatten": "selection",
    "interpolate": "selection",
    "nest": "selection",
    "references": "selection",
    "render": "selection",
    "select": "selection",
}


__getattr__ = lazy_getattr("mlbuild.params", _LAZY)

__all__ = [  # noqa: RUF022 - grouped by submodule
    "check_overrides",
    "compose_params",
    "expand_sweeps",
    "needs_hydra",
    "suggest",
    "PARAMS_ENV",
    "params",
    "UnsafeValueError",
    "flatten",
    "interpolate",
    "nest",
    "references",
    "render",
    "select",
]
