"""Building blocks the recipe's models share: the strict base model, name patterns, durations.

Kept apart from ``models.py`` so that each section's models (``model_tests.py``) can use them
without importing every other section.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag

STEP_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# positive: a digit 1-9 before or after the point (ECMA-262 too: editors run this pattern)
DURATION = r"^(?:\d*[1-9]\d*(?:\.\d+)?|\d+\.\d*[1-9]\d*)\s*[smh]?$"


class StrictModel(BaseModel):
    # strict: a value must already have the type the JSON Schema gives (no "yes" → True, no
    # "3" → 3), so that mlbuild and an editor using the schema accept exactly the same recipes.
    # defer_build: the core schemas (~0.1 s) are built on the first validation, not on import:
    # a recipe rebuilt from mlbuild.recipe.structure's cache never needs them
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


def shape_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "#str"
    if isinstance(value, list):
        return "#list"
    if isinstance(value, dict):
        return "#map"
    return None


def number_or_text_tag(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return "#num"
    return "#str" if isinstance(value, str) else None


_YEAR = 365 * 24 * 3600


def _positive(value: float | str) -> float | str:
    if parse_duration(value) <= 0:
        raise ValueError("must be greater than 0")
    return value


Timeout = Annotated[
    # at most a year: no step is meant to run longer, and inf (`1e400`) is no timeout at all
    Annotated[float, Field(gt=0, le=_YEAR), Tag("#num")]
    | Annotated[str, Field(pattern=DURATION), Tag("#str")],
    Discriminator(
        number_or_text_tag,
        custom_error_type="duration",
        custom_error_message="expected seconds (a number) or a duration such as 90s, 30m, 2h",
    ),
    # the pattern wants a digit 1-9, but "0.000…1s" with hundreds of zeros is 0.0 seconds
    AfterValidator(_positive),
]


def parse_duration(value: float | str) -> float:
    """``90`` → 90.0, ``"30m"`` → 1800.0 (the pattern was checked by the model)."""
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    if re.match(DURATION, text) is None:
        raise ValueError(f"not a duration: {value!r}")
    unit = text[-1] if text[-1] in "smh" else "s"
    number = text.rstrip("smh").strip()
    return float(number) * {"s": 1, "m": 60, "h": 3600}[unit]
