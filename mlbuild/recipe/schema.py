"""The JSON Schema of ``ml.yaml``, generated from the models.

Tuned for Red Hat's yaml-language-server (VS Code, Neovim, JetBrains): every property has a
``description`` and a ``markdownDescription`` for hovers, defaults and examples for completion, and
no ``title`` noise in completion lists.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from mlbuild.errors import MlbuildError
from mlbuild.recipe.models import Recipe

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# names the schema (its `$ref`s resolve against it); a modeline may use this URL or, as
# `mlbuild init` writes, the committed file beside ml.yaml
SCHEMA_ID = "https://mlbuild.dev/schema/ml.schema.json"


class StaleSchemaError(MlbuildError):
    """A schema file is not the one this mlbuild generates."""


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema document for ``ml.yaml``."""
    schema = Recipe.model_json_schema(mode="validation")
    _polish(schema)
    return {"$schema": DRAFT, "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    """The schema as the exact text committed in ``schema/ml.schema.json``."""
    return json.dumps(recipe_json_schema(), indent=2, sort_keys=False) + "\n"


def write_schema(path: Path) -> bool:
    """Write the schema to ``path`` (atomically), unless it already holds exactly that; whether
    it wrote."""
    if path.is_dir() or not path.name:
        raise MlbuildError(f"cannot write {path}: it is a directory; name a file")
    text = render_schema()
    if _read(path) == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise MlbuildError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True


def check_schema(path: Path, display: str) -> None:
    """Raise :class:`StaleSchemaError` unless ``path`` holds exactly the current schema."""
    found = _read(path)
    if found == render_schema():
        return
    what = "does not exist" if found is None else "is not the schema of this mlbuild"
    raise StaleSchemaError(f"{display} {what}; write it with `mlbuild schema -o {display}`")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


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
