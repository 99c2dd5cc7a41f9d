"""The recipe's ``search:`` section: hyperparameter searches Optuna runs (see mlbuild/search)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlbuild.recipe.fields import STEP_NAME, Timeout
from mlbuild.recipe.fields import StrictModel as _Model

SEARCH_NAME = STEP_NAME
# a dotted parameter key, as overrides name them (`train.lr`, `model`)
PARAM_KEY = r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$"
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2", "qmc")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
Scalar = str | int | float | bool | None


def _check_range(low: float, high: float, log: bool) -> None:
    # the wording of Optuna's own checks (optuna/distributions.py), raised before any trial
    if low > high:
        raise ValueError(f"`low <= high` must hold, but got low={low} and high={high}")
    if log and low <= 0:
        raise ValueError(f"a log range must stay above 0, but got low={low}")


# the rules of _valid that JSON Schema can state, for editors (`low <= high` it cannot)
_LOG_RULES: dict[str, Any] = {
    "if": {"required": ["log"], "properties": {"log": {"const": True, "description": "Log."}}},
    "then": {
        "properties": {"low": {"exclusiveMinimum": 0, "description": "Above 0 on a log scale."}},
        "not": {"required": ["step"]},
    },
}


class FloatRange(_Model):
    """A float between `low` and `high` (Optuna's `FloatDistribution`)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, json_schema_extra=_LOG_RULES
    )

    type: Literal["float"] = Field(description="`float`: a real number in [low, high].")
    low: float = Field(description="Smallest value (included).", examples=[0.0001])
    high: float = Field(description="Largest value (included).", examples=[0.1])
    log: bool = Field(
        default=False,
        description="Sample on a log scale (for learning rates, regularisation strengths); `low` "
        "must be above 0.",
    )
    step: float | None = Field(
        default=None,
        gt=0,
        description="Only values `low + k * step` (a discrete range, which the grid sampler can "
        "enumerate); not with `log`.",
        examples=[0.05],
    )

    @model_validator(mode="after")
    def _valid(self) -> FloatRange:
        _check_range(self.low, self.high, self.log)
        if self.log and self.step is not None:
            raise ValueError(
                "give either 'log' or 'step', not both (Optuna samples one or the other)"
            )
        return self


class IntRange(_Model):
    """An integer between `low` and `high` (Optuna's `IntDistribution`)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, json_schema_extra=_LOG_RULES
    )

    type: Literal["int"] = Field(description="`int`: a whole number in [low, high].")
    low: int = Field(description="Smallest value (included).", examples=[2])
    high: int = Field(description="Largest value (included).", examples=[10])
    log: bool = Field(default=False, description="Sample on a log scale; `low` must be at least 1.")
    step: int = Field(default=1, ge=1, description="Only values `low + k * step`; not with `log`.")

    @model_validator(mode="after")
    def _valid(self) -> IntRange:
        _check_range(self.low, self.high, self.log)
        if self.log and "step" in self.model_fields_set:
            raise ValueError(
                "give either 'log' or 'step', not both (Optuna samples one or the other)"
            )
        return self


def _distinct(value: list[Scalar]) -> list[Scalar]:
    seen: list[Scalar] = []
    for item in value:
        # as JSON Schema's uniqueItems: 1 and 1.0 are one value, true and 1 are two
        if any(item == s and isinstance(item, bool) == isinstance(s, bool) for s in seen):
            raise ValueError(f"{item!r} is listed twice")
        seen.append(item)
    return value


Choices = Annotated[
    list[Scalar],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]


class Choice(_Model):
    """One of a list of values (Optuna's `CategoricalDistribution`)."""

    type: Literal["categorical"] = Field(description="`categorical`: one of `choices`.")
    choices: Choices = Field(
        description="The values to choose from: strings, numbers, booleans or null (a config "
        "group's options, for `model: [logreg, tree]`).",
        examples=[["logreg", "tree"]],
    )


def _distribution(value: Any) -> str | None:
    if isinstance(value, list):
        return "#list"
    if isinstance(value, dict) and value.get("type") in ("float", "int", "categorical"):
        return f"#{value['type']}"
    return None


Distribution = Annotated[
    Annotated[FloatRange, Tag("#float")]
    | Annotated[IntRange, Tag("#int")]
    | Annotated[Choice, Tag("#categorical")]
    | Annotated[Choices, Tag("#list")],
    Discriminator(
        _distribution,
        custom_error_type="distribution",
        custom_error_message="expected {type: float, low, high}, {type: int, low, high}, "
        "{type: categorical, choices: [...]} or a list of choices",
    ),
]


def _space_shape(value: Any) -> str | None:
    if isinstance(value, str):
        return "#hydra"
    return "#map" if isinstance(value, dict) else None


Space = Annotated[
    Annotated[
        dict[Annotated[str, Field(pattern=PARAM_KEY)], Distribution],
        Field(min_length=1),
        Tag("#map"),
    ]
    | Annotated[Literal["hydra"], Tag("#hydra")],
    Discriminator(
        _space_shape,
        custom_error_type="space_shape",
        custom_error_message="expected a mapping of parameter keys to distributions, or "
        "'hydra' (the Hydra config's hydra.sweeper.params)",
    ),
]


def is_continuous(distribution: FloatRange | IntRange | Choice | list[Scalar]) -> bool:
    """A range no grid can enumerate: floats without a ``step``."""
    return isinstance(distribution, FloatRange) and distribution.step is None


_CONTINUOUS = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"const": "float", "description": "A float range."}},
    "not": {"required": ["step"]},
}
# the rules of the validators below, for editors
_SEARCH_RULES: dict[str, Any] = {
    "anyOf": [
        {"required": ["n_trials"]},
        {"required": ["timeout"]},
        {"required": ["sampler"], "properties": {"sampler": {"const": "grid"}}},
    ],
    "allOf": [
        {
            "if": {"required": ["sampler"], "properties": {"sampler": {"const": "grid"}}},
            "then": {
                "properties": {
                    "space": {
                        "description": "The grid sampler takes a discrete space.",
                        "additionalProperties": {"not": _CONTINUOUS},
                    }
                }
            },
        },
        {
            "if": {"properties": {"objective": {"minProperties": 2}}},
            "then": {
                "properties": {
                    "sampler": {"not": {"const": "cmaes"}, "description": "One objective."},
                    "pruner": {"enum": ["none", None], "description": "No pruning."},
                }
            },
        },
    ],
}


class Search(_Model):
    """A hyperparameter search run by Optuna: each trial is a cached run of `step` with the
    trial's parameters as overrides."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, json_schema_extra=_SEARCH_RULES
    )

    description: str | None = Field(default=None, description="What the search is for, humans.")
    step: str = Field(
        pattern=STEP_NAME,
        description="The step whose metrics are the objective. A trial brings it (and what it "
        "depends on) up to date with the trial's parameters; unchanged upstream steps come from "
        "the cache.",
        examples=["evaluate"],
    )
    objective: dict[Annotated[str, Field(min_length=1)], Literal["maximize", "minimize"]] = Field(
        min_length=1,
        description="Metric → direction. The metrics are keys of the step's metrics files "
        "(dotted for nested ones). Several metrics make a multi-objective search, whose "
        "result is the Pareto front.",
        examples=[{"accuracy": "maximize"}, {"accuracy": "maximize", "latency_ms": "minimize"}],
    )
    space: Space = Field(
        description="Parameter key → its distribution: `{type: float, low, high, log, step}`, "
        "`{type: int, low, high, log, step}`, `{type: categorical, choices}` or a list of "
        "choices. `hydra` takes the space from the Hydra config's `hydra.sweeper.params`, in "
        "hydra-optuna-sweeper's syntax (`interval(0.001, 0.1)`, `range(1, 10)`, "
        "`choice(a, b)`, `tag(log, interval(...))`).",
        examples=[
            {"train.lr": {"type": "float", "low": 0.0001, "high": 0.1, "log": True}},
            "hydra",
        ],
    )
    overrides: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Overrides every trial runs with, before its own (`+search=optuna` selects "
        "the Hydra config that holds the sweeper's params).",
        examples=[["+search=optuna"]],
    )
    sampler: Literal["tpe", "random", "grid", "cmaes", "nsga2", "qmc"] = Field(
        default="tpe",
        description="Optuna's sampler: `tpe` (default), `random`, `grid` (every combination of a "
        "discrete space), `cmaes` (one objective), `nsga2` (several objectives), `qmc`.",
    )
    seed: int | None = Field(
        default=None,
        description="The sampler's seed: the same seed gives the same sequence of trials.",
        examples=[42],
    )
    pruner: Literal["median", "hyperband", "successive_halving", "none"] | None = Field(
        default=None,
        description="Stops hopeless trials from the values the step reports with "
        "`mlbuild.report(value, step=i)`: `median` (the default for one objective), "
        "`hyperband`, `successive_halving` or `none` (several objectives cannot be pruned).",
    )
    n_trials: int | None = Field(
        default=None,
        ge=1,
        description="Trials the study holds when done, counting those of earlier runs: raising it "
        "extends the study. Default with the grid sampler: the grid's size.",
        examples=[50],
    )
    timeout: Timeout | None = Field(
        default=None,
        description="Start no trial after this long (seconds, or `30m`, `2h`).",
        examples=["1h"],
    )
    storage: str | None = Field(
        default=None,
        min_length=1,
        description="Optuna storage, a SQLAlchemy URL: `postgresql://USER@HOST/DB` for workers "
        "on several machines. Default: SQLite in `.mlbuild/search.db`. Never a password "
        "(`PGPASSWORD` or `~/.pgpass`).",
        examples=["postgresql://optuna@db.example.com/studies"],
    )
    study: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
        description="Study name. Default: the recipe's name, the search's and a fingerprint of "
        "everything the search does not vary (code, data, other params, the objective), so an "
        "edit of those starts a new study instead of mixing results.",
    )

    @field_validator("storage")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        from mlbuild.recipe.models import Store  # the run store's rule, one copy

        return None if value is None else Store._no_password(value)

    @field_validator("sampler")
    @classmethod
    def _sampler_fits(cls, value: str, info: ValidationInfo) -> str:
        objective = info.data.get("objective") or {}
        space = info.data.get("space")
        if value == "cmaes" and len(objective) > 1:
            raise ValueError("cmaes optimises one objective; use nsga2 or tpe for several")
        if value == "grid" and isinstance(space, dict):
            continuous = [key for key, d in space.items() if is_continuous(d)]
            if continuous:
                raise ValueError(
                    f"the grid sampler needs a discrete space, but {', '.join(continuous)} "
                    "is a continuous float range; give it a 'step' or choose another sampler"
                )
        return value

    @field_validator("pruner")
    @classmethod
    def _pruner_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        objective = info.data.get("objective") or {}
        if value not in (None, "none") and len(objective) > 1:
            raise ValueError("a search with several objectives cannot be pruned; remove the pruner")
        return value

    @model_validator(mode="after")
    def _bounded(self) -> Search:
        if self.n_trials is None and self.timeout is None and self.sampler != "grid":
            raise ValueError("give 'n_trials' or 'timeout' (or both): when does the search stop?")
        return self
