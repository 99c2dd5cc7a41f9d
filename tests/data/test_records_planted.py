"""A FIFO, or a symlink to a file out of the workspace, planted as one of a dataset's records in
``.mlbuild/data`` (the record, its verified summary, its ``.dvc`` file's memo; mlbuild/data): a
run neither waits on it for ever nor writes through it, and answers the dataset's version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHILD_ENV
from tests.data.test_snapshot import FILES, run, tracked, wait_out_racy_window

VERSION = """
import sys
from pathlib import Path
from mlbuild.data import DataSources, DatasetSpec
root = Path(sys.argv[1])
sources = DataSources(root, root / '.mlbuild', {'raw': DatasetSpec('raw', 'data/raw')})
print(sources.version('raw').hash)
"""


@pytest.mark.parametrize("record", ["raw.json", "verified/raw.json", "dvcfiles/*.json"])
@pytest.mark.parametrize("plant", ["a FIFO", "a symlink to a file outside"])
def test_a_planted_data_record_is_neither_waited_on_nor_written_through(
    tmp_path: Path, record: str, plant: str
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    digest = tracked(root, FILES)
    run(root)
    wait_out_racy_window()
    run(root)
    [path] = (root / ".mlbuild/data").glob(record)
    outside = tmp_path / "outside.json"
    outside.write_text(path.read_text())
    kept = outside.read_text()
    path.unlink()
    if plant == "a FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to(outside)

    done = subprocess.run(
        [sys.executable, "-c", VERSION, str(root)],
        env={**os.environ, **CHILD_ENV},
        capture_output=True,
        text=True,
        timeout=60,  # reading a FIFO with no writer waits for ever
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == digest
    assert outside.read_text() == kept
