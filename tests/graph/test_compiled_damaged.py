"""A compiled-graph entry (``.mlbuild/compiled/<key>.json``) read back in another shape than the
one mlbuild writes — damaged, planted, left by another tool — is compiled anew, never a crash."""

from __future__ import annotations

import pytest

from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: demo
steps:
  make: {cmd: "python -c \\"open('o.txt', 'w').write('x')\\"", outs: [o.txt]}
"""


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "[]",
        "null",
        '{"inputs": [1], "graph": 1}',
        '{"inputs": {}, "env": [], "graph": {}}',
        '{"inputs": {}, "graph": {"steps": {"make": 1}}}',
        '{"inputs": {"ml.yaml": 3}, "graph": {}}',
    ],
    ids=[
        "empty",
        "a list",
        "null",
        "inputs a list",
        "env a list",
        "a step not a mapping",
        "a digest not text",
    ],
)
def test_an_entry_of_another_shape_is_compiled_anew(ws: Workspace, text: str) -> None:
    ws.recipe(RECIPE)
    assert ws.cli("plan").returncode == 0
    (entry,) = (ws.root / ".mlbuild" / "compiled").iterdir()
    entry.write_text(text)
    result = ws.cli("plan")
    assert (result.returncode, result.stderr) == (0, "")
    assert "make  run" in result.stdout
