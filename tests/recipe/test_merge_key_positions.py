"""A key given explicitly beside a YAML merge key (``<<: *anchor``) overrides
the merged one, so its position (for error messages) must be where it is written, not where the
anchor's key sits."""

from __future__ import annotations

from mlbuild.recipe._yaml import load_yaml

TEXT = """\
steps:
  a: &b
    cmd: x
    deps: [in.txt]
  b:
    <<: *b
    deps: [missing.txt]
"""


def test_explicit_key_beside_merge_key_is_located_where_written() -> None:
    data, source = load_yaml(TEXT, "ml.yaml")
    assert data["steps"]["b"]["deps"] == ["missing.txt"]
    pos = source.values[("steps", "b", "deps", 0)]
    assert (pos.line, pos.column) == (7, 12)
