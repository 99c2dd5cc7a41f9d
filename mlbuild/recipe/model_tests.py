"""The recipe's ``tests:`` section: the model's release gates, one mapping per test, by ``kind``.

Each kind is a model whose ``kind`` is a literal, so pydantic picks the model by that key (a
discriminated union) and a misspelt kind gets one error naming the kinds there are. What needs the
model or the files (a column the signature lacks, a metric no step records) is checked by
:mod:`mlbuild.testing` before any test runs; here is only the shape.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator

from mlbuild.recipe.fields import STEP_NAME, StrictModel, Timeout, number_or_text_tag

TEST_KINDS = (
    "metric",
    "cases",
    "invariance",
    "directional",
    "slices",
    "latency",
    "serving",
    "pytest",
)
TEST_NAME = STEP_NAME
# a metric as runs record it: a dotted key, or STEP/KEY for a key several steps record
METRIC_KEY = r"^(?:[A-Za-z_][A-Za-z0-9_-]*/)?[^/\s]+$"
ALIAS_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
COLUMN = Annotated[str, Field(min_length=1)]
TABLE_FILE_HINT = "a .csv file with a header row, or a .jsonl file with one object per line"

NonNegative = Annotated[float, Field(ge=0)]


def _number_or_map(value: Any) -> str | None:
    if isinstance(value, dict):
        return "#map"
    return "#num" if number_or_text_tag(value) == "#num" else None


Tolerance = Annotated[
    Annotated[NonNegative, Tag("#num")] | Annotated[dict[str, NonNegative], Tag("#map")],
    Discriminator(
        _number_or_map,
        custom_error_type="tolerance_shape",
        custom_error_message="expected a number (for every output) or a mapping of output name "
        "to number",
    ),
]


class _Test(StrictModel):
    description: str | None = Field(default=None, description="What the test guards, for humans.")
    deps: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="More files or directories whose change must run the test again (the "
        "model's artifacts, the files the test names and the servable's code are already "
        "followed).",
        examples=[["src/"]],
    )


class Baseline(StrictModel):
    """Compare with a registered model version: no worse than it by more than ``tolerance``."""

    alias: str = Field(
        default="production",
        pattern=ALIAS_NAME,
        description="The alias of the version to compare with (`mlbuild model alias`).",
        examples=["production"],
    )
    model: str | None = Field(
        default=None,
        pattern=ALIAS_NAME,
        description="The registered model's name (default: `model.name`, else the recipe's name).",
        examples=["iris"],
    )
    tolerance: NonNegative = Field(
        default=0.0,
        description="How much worse than the baseline's value the metric may be.",
        examples=[0.01],
    )
    better: Literal["higher", "lower"] = Field(
        default="higher",
        description="Whether a higher value is better (accuracy) or a lower one (loss, error).",
    )


class MetricTest(_Test):
    """Bounds on a metric a step records, and optionally a comparison with production."""

    # the rules of the validator below, for editors
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        json_schema_extra={
            "anyOf": [{"required": ["min"]}, {"required": ["max"]}, {"required": ["baseline"]}]
        },
    )

    kind: Literal["metric"] = Field(description="`metric`: bounds on a recorded metric.")
    metric: str = Field(
        pattern=METRIC_KEY,
        description="The metric, as runs record it: a key of a step's metrics file (nested "
        "keys joined with `.`), or `STEP/KEY` when several steps record that key.",
        examples=["accuracy", "evaluate/accuracy"],
    )
    min: float | None = Field(default=None, description="The lowest value that passes.")
    max: float | None = Field(default=None, description="The highest value that passes.")
    baseline: Baseline | None = Field(
        default=None,
        description="Also compare with the value the model version under an alias "
        "(`production`) was registered with: no worse by more than `tolerance`. Passes with a "
        "note while no version has the alias.",
    )

    @model_validator(mode="after")
    def _bounded(self) -> MetricTest:
        if self.min is None and self.max is None and self.baseline is None:
            raise ValueError("a metric test needs 'min', 'max' or 'baseline'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min}) must not be above 'max' ({self.max})")
        return self


class _TableTest(_Test):
    file: str = Field(
        min_length=1,
        description=f"Rows for the model: {TABLE_FILE_HINT}. Columns named like the model's "
        "inputs are its inputs.",
        examples=["tests/golden.csv"],
    )


class CasesTest(_TableTest):
    """Golden cases: inputs with the outputs the model must give."""

    kind: Literal["cases"] = Field(description="`cases`: golden inputs and expected outputs.")
    file: str = Field(
        min_length=1,
        description=f"The cases: {TABLE_FILE_HINT}. Input columns, then for each output to "
        "check a column named like it (the expected class or value), and/or `OUTPUT>=` and "
        "`OUTPUT<=` columns (a range). An empty cell expects nothing.",
        examples=["tests/golden.csv"],
    )
    tolerance: Tolerance = Field(
        default=0.0,
        description="How far a numeric output may be from its expected value: one number, or "
        "one per output.",
        examples=[0.01, {"price": 0.5}],
    )
    name_column: str | None = Field(
        default=None,
        min_length=1,
        description="A column that names each case, for the report (default: its line).",
        examples=["case"],
    )


def _scalar_tag(value: Any) -> str | None:
    if isinstance(value, bool):
        return "#bool"
    if isinstance(value, int | float):
        return "#num"
    return "#str" if isinstance(value, str) else None


Scalar = Annotated[
    Annotated[bool, Tag("#bool")] | Annotated[float, Tag("#num")] | Annotated[str, Tag("#str")],
    Discriminator(
        _scalar_tag,
        custom_error_type="scalar",
        custom_error_message="expected a number, a string or true/false",
    ),
]


class Perturbation(StrictModel):
    """How one input is changed: exactly one of ``add``, ``multiply`` or ``set``."""

    # the rule of _one, for editors
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        json_schema_extra={"minProperties": 1, "maxProperties": 1},
    )

    add: float | None = Field(default=None, description="Add this to the value.")
    multiply: float | None = Field(default=None, description="Multiply the value by this.")
    set: Scalar | None = Field(default=None, description="Replace the value with this.")

    @model_validator(mode="after")
    def _one(self) -> Perturbation:
        given = [k for k in ("add", "multiply", "set") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'add', 'multiply' or 'set'")
        return self


_PERTURB = Field(
    min_length=1,
    description="The inputs to change, each with `add`, `multiply` or `set`.",
    examples=[{"sepal_width": {"add": 0.1}}],
)
_FAILURE_RATE = Field(
    default=0.0,
    ge=0,
    le=1,
    description="The fraction of rows that may break the expectation (0: none may).",
)


class InvarianceTest(_TableTest):
    """Perturb inputs; the predictions must stay the same."""

    kind: Literal["invariance"] = Field(
        description="`invariance`: perturbed inputs must not change the prediction."
    )
    perturb: dict[str, Perturbation] = _PERTURB
    outputs: list[COLUMN] | None = Field(
        default=None,
        min_length=1,
        description="The outputs that must not change (default: all).",
        examples=[["species"]],
    )
    tolerance: NonNegative = Field(
        default=0.0, description="How far a numeric output may move and still count as the same."
    )
    max_failure_rate: float = _FAILURE_RATE


class DirectionalTest(_TableTest):
    """Perturb inputs; a numeric output must move the declared way."""

    kind: Literal["directional"] = Field(
        description="`directional`: perturbed inputs must move an output up or down."
    )
    perturb: dict[str, Perturbation] = _PERTURB
    output: str = Field(
        min_length=1, description="The numeric output that must move.", examples=["score"]
    )
    expect: Literal["increase", "decrease", "not_increase", "not_decrease"] = Field(
        description="How the output must move: strictly up (`increase`) or down (`decrease`), "
        "or never down (`not_decrease`) or up (`not_increase`)."
    )
    max_failure_rate: float = _FAILURE_RATE


class SlicesTest(_TableTest):
    """A metric computed for each group of a column must hold in every group."""

    # the rules of the validator below, for editors
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        json_schema_extra={
            "anyOf": [{"required": ["min"]}, {"required": ["max"]}, {"required": ["max_gap"]}],
            "if": {
                "properties": {
                    "metric": {
                        "enum": ["accuracy", "mae", "rmse"],
                        "description": "A metric that compares with the label.",
                    }
                }
            },
            "then": {"required": ["label"]},
        },
    )

    kind: Literal["slices"] = Field(
        description="`slices`: a metric per group (fairness, regions) must hold in each."
    )
    by: str = Field(
        min_length=1,
        description="The column of the file whose values form the groups.",
        examples=["region"],
    )
    metric: Literal["accuracy", "mae", "rmse", "mean"] = Field(
        description="`accuracy` (predictions equal to the label), `mae` and `rmse` (against "
        "the label), or `mean` (of the predictions, e.g. a positive rate)."
    )
    label: str | None = Field(
        default=None,
        min_length=1,
        description="The column holding the true value (needed by accuracy, mae and rmse).",
        examples=["label"],
    )
    output: str | None = Field(
        default=None,
        min_length=1,
        description="The output the metric is computed on (default: the model's only output).",
        examples=["label"],
    )
    min: float | None = Field(default=None, description="The lowest value each group may have.")
    max: float | None = Field(default=None, description="The highest value each group may have.")
    max_gap: NonNegative | None = Field(
        default=None, description="The largest difference allowed between two groups."
    )
    min_rows: int = Field(
        default=1,
        ge=1,
        description="Groups with fewer rows are reported but not judged.",
    )

    @model_validator(mode="after")
    def _judged(self) -> SlicesTest:
        if self.min is None and self.max is None and self.max_gap is None:
            raise ValueError("a slices test needs 'min', 'max' or 'max_gap'")
        if self.metric != "mean" and self.label is None:
            raise ValueError(f"the {self.metric} metric compares with a label; add 'label'")
        return self


class LatencyTest(_TableTest):
    """p95 prediction latency budgets, in-process and through the server."""

    # the rules of the validator below, for editors
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        json_schema_extra={"anyOf": [{"required": ["p95_ms"]}, {"required": ["server_p95_ms"]}]},
    )

    kind: Literal["latency"] = Field(description="`latency`: p95 prediction latency budgets.")
    p95_ms: float | None = Field(
        default=None,
        gt=0,
        description="Budget for the 95th percentile of in-process predictions, in milliseconds.",
        examples=[20],
    )
    server_p95_ms: float | None = Field(
        default=None,
        gt=0,
        description="Budget for the 95th percentile of requests to `mlbuild serve` (Open "
        "Inference Protocol, one connection), in milliseconds.",
        examples=[50],
    )
    requests: int = Field(
        default=100, ge=1, le=100_000, description="Predictions timed (after the warm-up)."
    )
    batch: int = Field(default=1, ge=1, le=10_000, description="Rows per prediction.")
    warmup: int = Field(default=5, ge=0, le=10_000, description="Predictions made before timing.")

    @model_validator(mode="after")
    def _budget(self) -> LatencyTest:
        if self.p95_ms is None and self.server_p95_ms is None:
            raise ValueError("a latency test needs 'p95_ms' or 'server_p95_ms'")
        return self


class ServingTest(_Test):
    """Start the server, check health and metadata, and require in-process predictions."""

    kind: Literal["serving"] = Field(
        description="`serving`: the served model answers as the in-process one does."
    )
    file: str | None = Field(
        default=None,
        min_length=1,
        description=f"Rows sent to the server ({TABLE_FILE_HINT}); its predictions must equal "
        "the in-process ones. Without it, only health and metadata are checked.",
        examples=["tests/golden.csv"],
    )
    target: Literal["server", "bundle"] = Field(
        default="server",
        description="What is started: `server` (`mlbuild serve` on the cached model) or "
        "`bundle` (the bundle `mlbuild package` makes of it, written to a temporary directory "
        "and served with `mlbuild serve BUNDLE`, outside the repository; needs `package:`).",
    )
    tolerance: NonNegative = Field(
        default=0.0, description="How far a float output may be from the in-process value."
    )


class PytestTest(_Test):
    """The team's own pytest tests, with mlbuild's fixtures."""

    kind: Literal["pytest"] = Field(
        description="`pytest`: a pytest folder, with the fixtures `model`, `predict`, "
        "`server_url`, `params` and `metrics`."
    )
    path: str = Field(
        min_length=1,
        description="The folder (or file) of pytest tests, relative to the recipe.",
        examples=["tests/model"],
    )
    args: list[str] = Field(
        default_factory=list,
        description="More pytest arguments (passed as arguments, never through a shell).",
        examples=[["-k", "not slow"]],
    )
    timeout: Timeout | None = Field(
        default=None,
        description="Stop pytest and fail the test after this long (`90`, `10m`).",
        examples=["10m"],
    )


Test = Annotated[
    MetricTest
    | CasesTest
    | InvarianceTest
    | DirectionalTest
    | SlicesTest
    | LatencyTest
    | ServingTest
    | PytestTest,
    Field(discriminator="kind"),
]

TEST_MODELS: dict[str, type[StrictModel]] = {
    "metric": MetricTest,
    "cases": CasesTest,
    "invariance": InvarianceTest,
    "directional": DirectionalTest,
    "slices": SlicesTest,
    "latency": LatencyTest,
    "serving": ServingTest,
    "pytest": PytestTest,
}
