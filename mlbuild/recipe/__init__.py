"""The ``ml.yaml`` recipe: models, the position-aware loader and the JSON Schema.

pydantic costs ~0.15 s to import, more than a no-op ``mlbuild run`` may take in all, so the
models and the loader are loaded on first use (PEP 562); a run whose compiled graph is cached
never loads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlbuild._lazy import lazy_getattr

RECIPE_FILE = "ml.yaml"
# the schema file `mlbuild init` writes beside ml.yaml, to commit: its modeline points here, so
# editors validate the recipe in any clone, offline
SCHEMA_FILE = "ml.schema.json"

if TYPE_CHECKING:
    from mlbuild.recipe._yaml import KeyPath as KeyPath
    from mlbuild.recipe._yaml import Position as Position
    from mlbuild.recipe._yaml import SourceMap as SourceMap
    from mlbuild.recipe._yaml import check_yaml_limits as check_yaml_limits
    from mlbuild.recipe._yaml import format_path as format_path
    from mlbuild.recipe._yaml import load_yaml as load_yaml
    from mlbuild.recipe._yaml import safe_load_yaml as safe_load_yaml
    from mlbuild.recipe.executors import EXECUTOR_NAMES as EXECUTOR_NAMES
    from mlbuild.recipe.executors import Executors as Executors
    from mlbuild.recipe.executors import needs_settings as needs_settings
    from mlbuild.recipe.loader import load_recipe as load_recipe
    from mlbuild.recipe.loader import parse_recipe as parse_recipe
    from mlbuild.recipe.models import SCHEMA_VERSION as SCHEMA_VERSION
    from mlbuild.recipe.models import DataImport as DataImport
    from mlbuild.recipe.models import Dataset as Dataset
    from mlbuild.recipe.models import Environment as Environment
    from mlbuild.recipe.models import ModelCheck as ModelCheck
    from mlbuild.recipe.models import OutSpec as OutSpec
    from mlbuild.recipe.models import ParamSources as ParamSources
    from mlbuild.recipe.models import Recipe as Recipe
    from mlbuild.recipe.models import ServingModel as ServingModel
    from mlbuild.recipe.models import Signature as Signature
    from mlbuild.recipe.models import Step as Step
    from mlbuild.recipe.models import TensorSpec as TensorSpec
    from mlbuild.recipe.models import parse_duration as parse_duration
    from mlbuild.recipe.schema import SCHEMA_ID as SCHEMA_ID
    from mlbuild.recipe.schema import StaleSchemaError as StaleSchemaError
    from mlbuild.recipe.schema import check_schema as check_schema
    from mlbuild.recipe.schema import recipe_json_schema as recipe_json_schema
    from mlbuild.recipe.schema import render_schema as render_schema
    from mlbuild.recipe.schema import write_schema as write_schema

_LAZY = {
    "KeyPath": "_yaml",
    "Position": "_yaml",
    "SourceMap": "_yaml",
    "check_yaml_limits": "_yaml",
    "format_path": "_yaml",
    "load_yaml": "_yaml",
    "safe_load_yaml": "_yaml",
    "EXECUTOR_NAMES": "executors",
    "Executors": "executors",
    "needs_settings": "executors",
    "load_recipe": "loader",
    "parse_recipe": "loader",
    "SCHEMA_VERSION": "models",
    "DataImport": "models",
    "Dataset": "models",
    "Environment": "models",
    "ModelCheck": "models",
    "OutSpec": "models",
    "ParamSources": "models",
    "Recipe": "models",
    "Step": "models",
    "TensorSpec": "models",
    "Signature": "models",
    "ServingModel": "models",
    "parse_duration": "models",
    "SCHEMA_ID": "schema",
    "StaleSchemaError": "schema",
    "check_schema": "schema",
    "recipe_json_schema": "schema",
    "render_schema": "schema",
    "write_schema": "schema",
}


__getattr__ = lazy_getattr("mlbuild.recipe", _LAZY)

__all__ = [  # noqa: RUF022 - the lazy names follow the constant
    "RECIPE_FILE",
    "SCHEMA_FILE",
    "KeyPath",
    "Position",
    "SourceMap",
    "check_yaml_limits",
    "format_path",
    "load_yaml",
    "safe_load_yaml",
    "load_recipe",
    "parse_recipe",
    "SCHEMA_VERSION",
    "DataImport",
    "Dataset",
    "Environment",
    "OutSpec",
    "ParamSources",
    "Recipe",
    "Step",
    "ServingModel",
    "parse_duration",
    "SCHEMA_ID",
    "StaleSchemaError",
    "check_schema",
    "recipe_json_schema",
    "render_schema",
    "write_schema",
]
