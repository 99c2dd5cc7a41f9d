"""What a step's own code calls: ``mlbuild.params()`` reads the step's resolved parameters."""

from __future__ import annotations

import json
import os
from typing import Any

PARAMS_ENV = "MLBUILD_PARAMS"


def params() -> dict[str, Any]:
    """The parameters this step declared, as nested dicts (``params()["train"]["lr"]``).

    mlbuild writes them to a JSON file and names it in ``MLBUILD_PARAMS``. Outside mlbuild, with
    the variable unset, this raises ``RuntimeError`` rather than guessing.
    """
    path = os.environ.get(PARAMS_ENV)
    if not path:
        raise RuntimeError(
            f"{PARAMS_ENV} is not set: run this code as a step with `mlbuild run`, or set "
            f"{PARAMS_ENV} to a JSON file of parameters"
        )
    with open(path, encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded
