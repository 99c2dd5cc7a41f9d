"""A step's log on a full disk: the error that reaches the user names the log, even when the
log's buffered tail fails again as it is closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlbuild.atomic import DiskFullError
from mlbuild.exec.lines import Lines
from mlbuild.masking import StreamMasker
from tests.cache.test_atomic import small_disk


@pytest.mark.parametrize("chunk", [100, 4_000, 9_000, 100_000])
def test_a_log_that_fills_the_disk_is_named_even_when_closing_it_fails_too(
    tmp_path: Path, chunk: int
) -> None:
    with small_disk(tmp_path / "disk", "64k") as disk:
        log = disk / "step.log"
        with (
            pytest.raises(DiskFullError) as caught,
            Lines(StreamMasker([]), log, lambda line: None) as lines,
        ):
            for _ in range(1_000):
                lines.feed(b"y" * chunk + b"\n")
        assert str(log) in caught.value.message
