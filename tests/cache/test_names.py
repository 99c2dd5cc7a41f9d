"""What a path read back from the cache (an action entry's outputs, a manifest's files) must look
like before it is joined to a folder: mlbuild.cache.names.is_safe_relpath."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from mlbuild.cache import is_safe_relpath


@pytest.mark.parametrize("good", ["a", "a/b", "model.pkl", "reports/eval/x.json", "..a", "a.."])
def test_a_normal_relative_path_is_safe(good: str) -> None:
    assert is_safe_relpath(good)
    assert str(PurePosixPath(good)) == good  # the one spelling of it


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/etc/passwd",
        "//a",
        "a/",
        "a//b",
        "./a",
        "a/.",
        "a/./b",
        "..",
        "../a",
        "a/../b",
        "a\\..\\b",
        "a\0b",
        ".",
    ],
)
def test_a_path_that_climbs_out_or_has_two_spellings_is_not(bad: str) -> None:
    assert not is_safe_relpath(bad)


@pytest.mark.parametrize("value", [None, 3, ["a"], b"a"])
def test_a_value_that_is_not_a_string_is_not(value: object) -> None:
    assert not is_safe_relpath(value)
