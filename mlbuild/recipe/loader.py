"""Read ``ml.yaml`` into a :class:`Recipe`, reporting every problem with its line and column."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlbuild.errors import Problem, RecipeError
from mlbuild.recipe import RECIPE_FILE
from mlbuild.recipe._yaml import KeyPath, SourceMap, load_yaml
from mlbuild.recipe.limits import read_limited
from mlbuild.recipe.model_tests import TEST_KINDS
from mlbuild.recipe.models import PARAMS_FILE_HINT, Recipe


def load_recipe(path: Path) -> tuple[Recipe, SourceMap]:
    """Load and validate the recipe at ``path``.

    Raises :class:`RecipeError` listing every problem (syntax, duplicate keys, unknown keys, wrong
    types) at once, each located at ``file:line:column``.
    """
    try:
        text = read_limited(path, str(path)).decode("utf-8")
    except FileNotFoundError:
        raise RecipeError(
            [Problem(str(path), None, None, "", "no recipe here; create one with `mlbuild init`")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(
            [Problem(str(path), None, None, "", f"cannot read the recipe: {exc}")]
        ) from None
    return parse_recipe(text, str(path))


def parse_recipe(text: str, file: str = RECIPE_FILE) -> tuple[Recipe, SourceMap]:
    """Validate recipe ``text``; ``file`` is the name used in messages."""
    data, source = load_yaml(text, file)
    return validate_recipe(data, source), source


def validate_recipe(data: Any, source: SourceMap) -> Recipe:
    """Validate recipe ``data`` read by :func:`load_yaml` with ``source``. Raises
    :class:`RecipeError` listing every problem, located."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise RecipeError(
            [
                source.problem(
                    (), f"expected a mapping with schema_version, name and steps, got {got}"
                )
            ]
        )
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(error, data, source) for error in _merge(exc.errors())]
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise RecipeError(problems) from None
    return recipe


def _merge(errors: list[Any]) -> list[Any]:
    """Drop discriminator tags from locations and keep one error per location and kind."""
    seen: set[tuple[KeyPath, str]] = set()
    merged = []
    for error in errors:
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("#")))
        if len(loc) >= 3 and loc[0] == "tests" and loc[2] in TEST_KINDS:
            loc = loc[:2] + loc[3:]  # the kind pydantic chose the test's model by
        # dict keys failing their pattern come as (…, 'name', '[key]')
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        if (loc, error["type"]) in seen:
            continue
        seen.add((loc, error["type"]))
        merged.append({**error, "loc": loc, "is_key": is_key})
    return merged


def _problem(error: Any, data: dict[str, Any], source: SourceMap) -> Problem:
    loc: KeyPath = error["loc"]
    kind: str = error["type"]
    if kind == "extra_forbidden":
        return source.problem(loc, _unknown_key(loc, data), at_key=True)
    if kind == "union_tag_invalid" and loc[:1] == ("tests",):
        return source.problem((*loc, "kind"), _unknown_kind(error["ctx"]["tag"]))
    if kind == "union_tag_not_found" and loc[:1] == ("tests",):
        kinds = ", ".join(TEST_KINDS)
        return source.problem(loc, f"missing required key 'kind' (one of: {kinds})", at_key=True)
    if kind == "missing":
        parent = loc[:-1]
        return source.problem(parent, f"missing required key '{loc[-1]}'", at_key=True)
    message = _describe(error)
    return source.problem(loc, message, at_key=bool(error.get("is_key")))


def _unknown_key(loc: KeyPath, data: dict[str, Any]) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1], data)
    if model is None:
        return f"unknown key '{key}'"
    valid = sorted(field.alias or name for name, field in model.model_fields.items())
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}; expected one of: {', '.join(valid)}"


def _unknown_kind(kind: str) -> str:
    close = difflib.get_close_matches(kind, TEST_KINDS, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown test kind '{kind}'{hint}; expected one of: {', '.join(TEST_KINDS)}"


def _model_at(loc: KeyPath, data: Any) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` of the recipe."""
    from mlbuild.recipe.models import (
        DataImport,
        Dataset,
        Environment,
        OutSpec,
        ParamSources,
        ServingModel,
        Signature,
        Step,
        TensorSpec,
    )

    if not loc:
        return Recipe
    head = loc[0]
    if head == "environment" and len(loc) == 1:
        return Environment
    if head == "params" and len(loc) == 1:
        return ParamSources
    if head == "steps" and len(loc) == 2:
        return Step
    if head == "steps" and len(loc) == 4 and loc[2] == "outs":
        return OutSpec
    if head == "data" and len(loc) == 2:
        return Dataset
    if head == "data" and len(loc) == 3 and loc[2] == "import":
        return DataImport
    if head == "tests" and len(loc) >= 2:
        return _test_model_at(loc, data)
    if head == "model" and len(loc) == 1:
        return ServingModel
    if head == "model" and len(loc) == 2 and loc[1] == "signature":
        return Signature
    if head == "model" and len(loc) == 4 and loc[1] == "signature":
        return TensorSpec
    return None


def _test_model_at(loc: KeyPath, data: Any) -> type[BaseModel] | None:
    from mlbuild.recipe.model_tests import TEST_MODELS, Baseline, Perturbation

    test = data.get("tests", {}).get(loc[1]) if isinstance(data.get("tests"), dict) else None
    kind = test.get("kind") if isinstance(test, dict) else None
    if len(loc) == 2:
        return TEST_MODELS.get(kind) if isinstance(kind, str) else None
    if len(loc) == 3 and loc[2] == "baseline":
        return Baseline
    if len(loc) == 4 and loc[2] == "perturb":
        return Perturbation
    return None


_MESSAGES = {
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "int_type": "expected an integer",
}


def _describe(error: Any) -> str:
    kind = error["type"]
    got = error.get("input")
    shown = _show(got)
    if kind in _MESSAGES:
        return f"{_MESSAGES[kind]}, got {shown}{_yaml11_hint(got)}"
    if kind == "string_pattern_mismatch" and error["loc"][-1] == "timeout":
        return f"expected seconds (a number) or a duration such as 90s, 30m, 2h, got {shown}"
    if kind == "string_pattern_mismatch" and error["loc"][::2] == ("tests", "metric"):
        return f"expected a metric key such as accuracy or evaluate/accuracy, got {shown}"
    if kind == "string_pattern_mismatch" and error["loc"][0] == "params":
        return f"expected {PARAMS_FILE_HINT}, got {shown}"
    if kind == "string_pattern_mismatch" and error["loc"][:2] == ("model", "check"):
        return f"expected a .csv, .jsonl or .ndjson file, got {shown}"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {shown}"
    if kind == "string_pattern_mismatch":
        what = "key" if error.get("is_key") else "value"
        return f"{what} {shown} does not match the pattern {error['ctx']['pattern']}"
    if kind == "greater_than_equal":
        return f"must be at least {error['ctx']['ge']}, got {shown}"
    if kind == "less_than_equal":
        return f"must be at most {error['ctx']['le']}, got {shown}"
    if kind == "greater_than":
        return f"must be greater than {error['ctx']['gt']}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("too_short", "list_too_short"):
        return f"needs at least {error['ctx'].get('min_length', 1)} item(s)"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']}, got {shown}"


def _yaml11_hint(value: Any) -> str:
    """YAML 1.1 read yes/no/on/off as booleans; the recipe is YAML 1.2, where they are text."""
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return (
            " (the recipe is YAML 1.2, where yes, no, on and off are strings; write true or false)"
        )
    return ""


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
