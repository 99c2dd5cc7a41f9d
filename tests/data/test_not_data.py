"""A FIFO, a socket or a device inside a DVC dataset is refused by name, never opened.

Opening a FIFO for reading waits for a writer for ever (DVC's hashing opens every entry, and a
FIFO next to a symlink used to reach it: `mlbuild run` hung, deaf to SIGTERM); a device never
ends. A symlink to nothing, or a loop, DVC refuses too. No DVC version names any of them, so a
run that meets one fails at once, naming the entry, and a FIFO added to a verified dataset is
never answered "cached".
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.data.test_dvc import dvc, git_dvc_repo, sh

pytestmark = pytest.mark.slow

RECIPE = """\
schema_version: 1
name: demo
data:
  images: {path: data/images}
  rows: {path: data/rows.csv}
steps:
  listing:
    cmd: ls data/images > listing.txt
    deps: [data:images]
    outs: [listing.txt]
  count:
    cmd: wc -c < data/rows.csv > count.txt
    deps: [data:rows]
    outs: [count.txt]
"""

REFUSED = "a dataset holds only files and folders (and symlinks to them)"


@pytest.fixture
def repo(ws: Workspace, tmp_path: Path) -> Workspace:
    git_dvc_repo(ws.root, tmp_path / "remote")
    (ws.root / "data/images/nested").mkdir(parents=True)
    (ws.root / "data/images/a.png").write_bytes(b"png" * 100)
    (ws.root / "data/images/nested/b.png").write_bytes(b"nested")
    (ws.root / "data/rows.csv").write_text("x\n1\n", encoding="utf-8")
    dvc(ws.root, "add", "-q", "data/images", "data/rows.csv")
    ws.recipe(RECIPE)
    sh(ws.root, "git", "add", "-A")
    sh(ws.root, "git", "commit", "-qm", "data")
    first = ws.cli("run")
    assert first.returncode == 0, first.stderr
    return ws


# each case finishes in seconds or hangs: the subprocess timeout turns a hang into a failure
@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda d: os.mkfifo(d / "nested/pipe"), "data/images/nested/pipe is a FIFO (named pipe)"),
        (lambda d: (d / "null").symlink_to("/dev/null"), "data/images/null is a symlink to a "),
    ],
    ids=["fifo", "symlink-to-device"],
)
def test_an_entry_that_is_not_data_fails_the_run_at_once_and_names_it(
    repo: Workspace, make: object, named: str
) -> None:
    images = repo.root / "data/images"
    make(images)  # type: ignore[operator]
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1
    assert "listing: FAILED" in done.stdout
    assert "listing: cached" not in done.stdout
    assert f"dataset 'images': {named}" in done.stderr
    assert REFUSED in done.stderr
    assert "Traceback" not in done.stderr
    # the other dataset's step is unaffected
    assert "count: cached" in done.stdout


def test_a_fifo_beside_a_symlink_is_refused_not_left_to_dvc_which_would_open_it(
    repo: Workspace,
) -> None:
    # a symlink makes mlbuild's own md5 give up and ask DVC: before, DVC then opened the FIFO
    images = repo.root / "data/images"
    (images / "a-link.png").symlink_to("a.png")
    os.mkfifo(images / "m-pipe")
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert "data/images/m-pipe is a FIFO (named pipe)" in done.stderr
    assert "data/images/a-link.png" not in done.stderr


def test_a_socket_is_refused(repo: Workspace) -> None:
    path = repo.root / "data/images/s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        done = repo.cli("plan", timeout=60)
    finally:
        server.close()
    assert done.returncode != 0
    assert "dataset 'images': data/images/s is a socket" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_dataset_that_is_itself_a_fifo_is_refused(repo: Workspace) -> None:
    rows = repo.root / "data/rows.csv"
    rows.unlink()
    os.mkfifo(rows)
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1
    assert "dataset 'rows': data/rows.csv is a FIFO (named pipe)" in done.stderr


@pytest.mark.parametrize(
    ("target", "kind"), [("nowhere", "a symlink to nothing"), ("loop", "a symlink loop")]
)
def test_a_dangling_symlink_is_refused_as_dvc_refuses_it(
    repo: Workspace, target: str, kind: str
) -> None:
    (repo.root / "data/images/loop").symlink_to(target)
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1
    assert f"dataset 'images': data/images/loop is {kind}" in done.stderr
    assert "Traceback" not in done.stderr


def test_once_the_fifo_is_removed_the_dataset_is_verified_again(repo: Workspace) -> None:
    pipe = repo.root / "data/images/pipe"
    os.mkfifo(pipe)
    assert repo.cli("run", timeout=60).returncode == 1
    pipe.unlink()
    done = repo.cli("run", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "listing: cached" in done.stdout


def test_a_run_that_meets_a_fifo_is_still_summed_up_and_recorded(repo: Workspace) -> None:
    # the run's record asked the refused dataset's version again after the steps: the DataError
    # escaped, so no summary, no record, and `run --json` printed nothing at all
    os.mkfifo(repo.root / "data/images/pipe")
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert "2 steps: 1 failed, 1 cached in " in done.stdout
    assert "recorded as run" in done.stdout
    as_json = repo.cli("run", "--json", timeout=60)
    assert as_json.returncode == 1, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert [f["name"] for f in summary["failed"]] == ["listing"]
    images = next(d for d in summary["data"] if d["name"] == "images")
    assert images["hash"] == ""  # no version can name it


def test_a_name_holding_an_escape_sequence_is_shown_escaped_in_the_steps_line(
    repo: Workspace,
) -> None:
    # stderr's "mlbuild: …" line escaped it; the step's FAILED line on stdout printed it raw
    os.mkfifo(repo.root / "data/images/x\x1b[2Jy")
    done = repo.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert "listing: FAILED: dataset 'images': data/images/x\\x1b[2Jy is a FIFO" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr
