"""The JSON Schema of ``ml.yaml``, generated from the models.

Tuned for Red Hat's yaml-language-server (VS Code, Neovim, JetBrains): every property has a
``description`` and a ``markdownDescription`` for hovers, defaults and examples for completion, and
no ``title`` noise in completion lists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.recipe import models
from mlbuild.recipe.models import Recipe

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema document for ``ml.yaml``."""
    schema = Recipe.model_json_schema(mode="validation")
    _polish(schema)
    return {"$schema": DRAFT, **schema}


def render_schema() -> str:
    """The schema as the exact text committed in ``schema/ml.schema.json``."""
    return json.dumps(recipe_json_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(path: Path, *, if_stale: bool = False) -> None:
    """Write the schema to ``path`` (atomically), unless it already holds exactly that.

    With ``if_stale``, a copy newer than the models it comes from is trusted without rendering
    the schema again (rendering costs a recompile ~10 ms).
    """
    if if_stale:
        try:
            if path.stat().st_mtime_ns > Path(models.__file__).stat().st_mtime_ns:
                return
        except OSError:
            pass
    text = render_schema()
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    atomic.write_text(path, text)


def _polish(node: Any) -> None:
    if isinstance(node, dict):
        if "patternProperties" in node:  # mapping keys must match, as pydantic enforces
            node.setdefault("additionalProperties", False)
        properties = node.get("properties")
        if isinstance(properties, dict):
            for prop in properties.values():
                prop.pop("title", None)
                if "description" in prop:
                    prop.setdefault("markdownDescription", prop["description"])
        for value in node.values():
            _polish(value)
    elif isinstance(node, list):
        for value in node:
            _polish(value)
