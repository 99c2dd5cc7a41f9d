"""A step's fingerprint is the hash of its components' JSON, sorted: the same bytes whatever
encoder makes them, so the caches of earlier versions stay valid."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from mlbuild.cache import hash_bytes
from mlbuild.graph.fingerprint import fingerprint
from tests.conftest import Workspace, statuses

BIG = int("9" * 400)  # past a float's range; far below Python's 4,300-digit str limit


@pytest.mark.parametrize(
    "parts",
    [
        {"format": 1, "cmd": "echo hi", "params": {"lr": 0.1, "depth": 3}},
        {"params": {"big": BIG, "neg": -BIG, "z": [BIG, 1.5e300, True, None]}},
        {"cmd": "caf\udce9 \u00e9 \u202e", "deps": {"b": "x", "a": None}},  # not UTF-8; bidi
        {"params": {"nan": math.nan, "inf": -math.inf}, "path": Path("a/b")},  # default=str
        {"z": {"b": {"d": 1, "c": 2}, "a": []}, "a": ["y", "x"]},
    ],
)
def test_the_fingerprint_is_the_hash_of_the_sorted_json_of_its_parts(parts: dict[str, Any]) -> None:
    expected = hash_bytes(json.dumps(parts, sort_keys=True, default=str).encode())
    assert fingerprint(parts) == expected
    assert fingerprint(parts) == expected  # the encoder is reused: nothing kept between calls


def test_a_param_of_400_digits_is_a_param_like_any_other(ws: Workspace) -> None:
    recipe = (
        "schema_version: 1\nname: big\nparams: {{big: {value}}}\nsteps:\n"
        "  s: {{cmd: 'echo ran > out.txt', outs: [out.txt], params: [big]}}\n"
    )
    ws.recipe(recipe.format(value=BIG))
    assert statuses(ws.run_json()) == {"s": "ran"}
    assert statuses(ws.run_json()) == {"s": "cached"}
    ws.recipe(recipe.format(value=BIG - 1))
    done = ws.cli("plan")
    assert done.returncode == 0, done.stderr
    assert f"param big changed: {BIG} → {BIG - 1}" in done.stdout
