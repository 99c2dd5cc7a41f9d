"""A DVC-tracked dataset's file rewritten in place with its size kept and its mtime set back is
seen as modified: mlbuild's verified record is stamped by ctime, and its own md5 of the changed
file outranks DVC's status, which trusts the mtime and calls such a copy up to date."""

from __future__ import annotations

import time

from mlbuild import racy
from tests.conftest import Workspace, rewrite_keeping_stat
from tests.data.test_dvc import repo  # noqa: F401  (the fixture)


def test_a_dataset_file_rewritten_with_its_stat_restored_is_modified(
    repo: Workspace,  # noqa: F811
) -> None:
    assert repo.cli("run").returncode == 0  # fetches the data, verifies it
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)
    assert repo.cli("run").returncode == 0  # the files now old enough: their stats recorded
    rewrite_keeping_stat(repo.root / "data/rows.csv", "x\ny\nz\n")
    done = repo.cli("run")
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith(
        "mlbuild: step 'count' failed: dataset 'rows': data/rows.csv differs from the version in "
        "data/rows.csv.dvc (md5 "
    ), done.stderr
