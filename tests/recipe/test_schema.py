"""The JSON Schema: generated from the models, committed, and useful in editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlbuild.recipe import recipe_json_schema, render_schema
from tests.conftest import REPO, Workspace

COMMITTED = REPO / "schema" / "ml.schema.json"


def test_the_committed_schema_is_what_the_models_generate() -> None:
    assert COMMITTED.read_text() == render_schema(), (
        "schema/ml.schema.json is stale: run `mlbuild schema > schema/ml.schema.json`"
    )


def test_mlbuild_schema_prints_it(tmp_path: Path) -> None:
    done = Workspace(tmp_path).cli("schema")
    assert done.returncode == 0
    assert done.stdout == COMMITTED.read_text()


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            found.append((f"{path}.{name}", prop))
        for key, value in node.items():
            found += _properties(value, f"{path}/{key}")
    return found


def test_every_property_has_a_description_for_editor_hovers() -> None:
    props = _properties(recipe_json_schema())
    assert len(props) > 20
    missing = [path for path, prop in props if not prop.get("description")]
    assert missing == []
    assert all(prop["markdownDescription"] == prop["description"] for _, prop in props)


def test_the_schema_gives_editors_defaults_examples_and_enums() -> None:
    schema = recipe_json_schema()
    step = schema["$defs"]["Step"]["properties"]
    assert step["always_run"]["default"] is False
    assert step["cmd"]["examples"]
    assert schema["properties"]["schema_version"]["const"] == 1
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["properties"]["steps"]["additionalProperties"] is False
    json.dumps(schema)  # serialisable as is
