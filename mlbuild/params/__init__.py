"""Parameters: Hydra composition, override grammar, per-step selection and interpolation.

Hydra and OmegaConf are imported inside the functions of ``compose`` only.
"""

from __future__ import annotations

from mlbuild.params.compose import check_overrides, compose_params, expand_sweeps, suggest
from mlbuild.params.runtime import PARAMS_ENV, params
from mlbuild.params.select import flatten, interpolate, nest, references, render, select

__all__ = [
    "PARAMS_ENV",
    "check_overrides",
    "compose_params",
    "expand_sweeps",
    "flatten",
    "interpolate",
    "nest",
    "params",
    "references",
    "render",
    "select",
    "suggest",
]
