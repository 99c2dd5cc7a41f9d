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
    assert schema["$id"] == "https://mlbuild.dev/schema/ml.schema.json"
    assert schema["properties"]["steps"]["additionalProperties"] is False
    json.dumps(schema)  # serialisable as is


def test_schema_o_writes_the_file_and_check_says_whether_it_is_current(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    assert ws.cli("schema", "-o", "conf/ml.schema.json").stdout == "wrote conf/ml.schema.json\n"
    assert ws.read("conf/ml.schema.json") == COMMITTED.read_text()
    assert ws.cli("schema", "-o", "conf/ml.schema.json").stdout == (
        "unchanged: conf/ml.schema.json\n"
    )
    current = ws.cli("schema", "--check", "conf/ml.schema.json")
    assert (current.returncode, current.stdout, current.stderr) == (0, "", "")
    ws.gen({"ml.schema.json": COMMITTED.read_text().replace('"$id"', '"$comment"')})
    stale = ws.cli("schema", "--check", "conf/ml.schema.json", "ml.schema.json", "gone.json")
    assert (stale.returncode, stale.stderr) == (
        1,
        "mlbuild: ml.schema.json is not the schema of this mlbuild; write it with "
        "`mlbuild schema -o ml.schema.json`\n"
        "mlbuild: gone.json does not exist; write it with `mlbuild schema -o gone.json`\n",
    )
    assert ws.cli("schema", "--check").returncode == 1  # default: ./ml.schema.json
    both = ws.cli("schema", "--check", "-o", "x.json")
    assert (both.returncode, both.stderr) == (
        2,
        "mlbuild: give either --check or -o/--output, not both\n",
    )


def test_schema_o_into_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    ws = Workspace(tmp_path).gen({"file": "x"})
    done = ws.cli("schema", "-o", "file/ml.schema.json")
    assert done.returncode == 1
    assert done.stderr.startswith("mlbuild: cannot write file/ml.schema.json: ")
    assert "Traceback" not in done.stderr
    directory = ws.cli("schema", "-o", ".")
    assert directory.returncode == 1
    assert directory.stderr == "mlbuild: cannot write .: it is a directory; name a file\n"
