"""DVC's version hash computed by mlbuild: the digest `dvc add` records, without importing DVC."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.data import md5
from mlbuild.data.md5 import Unsupported, dvc_hash
from mlbuild.data.snapshot import snapshot
from mlbuild.data.sources import _trusted
from tests.conftest import Workspace, statuses
from tests.data.test_dvc import dvc, git_dvc_repo, md5_in, sh

pytestmark = pytest.mark.slow

RECIPE = """\
schema_version: 1
name: demo
data:
  images: {path: data/images}
steps:
  listing:
    cmd: ls -R data/images > listing.txt
    deps: [data:images]
    outs: [listing.txt]
"""

NO_DVC_PROBE = (
    "import sys\n"
    "from mlbuild.cli.main import main\n"
    "code = main(['run', '-q'])\n"
    "print(code, 'dvc' in sys.modules)\n"
)


def dataset(root: Path) -> None:
    images = root / "data/images"
    (images / "nested/deeper").mkdir(parents=True)
    (images / "empty").mkdir()
    (images / "a.png").write_bytes(bytes(range(256)) * 5)
    (images / "b.txt").write_bytes(b"crlf\r\nline\r\n")  # DVC 3 hashes text as it is
    (images / "nested/ü ñ.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    (images / "nested/deeper/z").write_bytes(b"")
    (images / "nested/a-b").write_bytes(b"sorts between nested/ and nested/deeper/")


@pytest.fixture
def repo(ws: Workspace, tmp_path: Path) -> Workspace:
    git_dvc_repo(ws.root, tmp_path / "remote")
    dataset(ws.root)
    (ws.root / "data/rows.csv").write_bytes(os.urandom(3000))
    dvc(ws.root, "add", "-q", "data/images", "data/rows.csv")
    ws.recipe(RECIPE)
    sh(ws.root, "git", "add", "-A")
    sh(ws.root, "git", "commit", "-qm", "data")
    return ws


def test_the_digest_is_the_one_dvc_add_recorded_for_a_directory_and_a_file(repo: Workspace) -> None:
    images = dvc_hash(repo.root / "data/images", [], {})
    rows = dvc_hash(repo.root / "data/rows.csv", [], {})
    assert images is not None and rows is not None
    assert images.digest == md5_in(repo.root / "data/images.dvc")
    assert rows.digest == md5_in(repo.root / "data/rows.csv.dvc")
    assert sorted(images.md5) == [
        "a.png",
        "b.txt",
        "nested/a-b",
        "nested/deeper/z",
        "nested/ü ñ.csv",
    ]


def test_a_dataset_hashed_in_every_lane_of_two_threads_has_the_digest_dvc_add_recorded(
    ws: Workspace, tmp_path: Path
) -> None:
    # over md5._PARALLEL_BYTES and 70 files: two threads, each with three groups of eight lanes
    # busy, then files of other sizes ending one by one down to scalar code
    git_dvc_repo(ws.root, tmp_path / "remote")
    big = ws.root / "data/big"
    rng = random.Random(11)
    for i in range(70):
        folder = big / f"{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        size = rng.choice([rng.randrange(130), 300_000 + rng.randrange(300_000), 1 << 20])
        (folder / f"{i:03d}.bin").write_bytes(rng.randbytes(size))
    dvc(ws.root, "add", "-q", "data/big")
    hashed = dvc_hash(big, [], {})
    assert hashed is not None and len(hashed.md5) == 70
    assert sum(int(s[2]) for s in hashed.files) > md5._PARALLEL_BYTES
    assert hashed.digest == md5_in(ws.root / "data/big.dvc")


def test_an_unchanged_stat_keeps_its_recorded_md5_and_the_file_is_not_read_again(
    repo: Workspace,
) -> None:
    first = dvc_hash(repo.root / "data/images", [], {})
    assert first is not None
    planted = {**first.md5, "a.png": "0" * 32}  # a file that is read again would undo this
    again = dvc_hash(repo.root / "data/images", first.files, planted)
    assert again is not None and again.md5["a.png"] == "0" * 32
    os.utime(repo.root / "data/images/a.png", ns=(1, 1))  # its stat changed: read again
    touched = dvc_hash(repo.root / "data/images", first.files, planted)
    assert touched is not None and touched.md5["a.png"] == first.md5["a.png"]
    assert touched.digest == first.digest


def test_an_absent_path_has_no_hash(tmp_path: Path) -> None:
    assert dvc_hash(tmp_path / "nothing", [], {}) is None


@pytest.mark.parametrize(
    "special",
    [".dvcignore", ".git", "link", "nested/.git/", "nested/.dvc/", "nested/.hg", "nested/link"],
)
def test_what_dvc_treats_specially_is_left_to_dvc(tmp_path: Path, special: str) -> None:
    (tmp_path / "d/nested").mkdir(parents=True)
    (tmp_path / "d/nested/file").write_text("y")
    path = tmp_path / "d" / special
    if path.name == "link":
        path.symlink_to(tmp_path / "d/nested/file")
    elif special.endswith("/"):
        path.mkdir()
        (path / "HEAD").write_text("x")
    else:
        path.write_text("x")
    with pytest.raises(Unsupported):
        dvc_hash(tmp_path / "d", [], {})
    # nor is the snapshot's listing taken for DVC's manifest
    listed = snapshot(tmp_path / "d")
    assert listed is not None and not listed.plain


def test_a_plain_snapshot_is_the_listing_dvc_hashes_and_gives_the_digest_dvc_add_recorded(
    repo: Workspace,
) -> None:
    listed = snapshot(repo.root / "data/images")
    assert listed is not None and listed.plain
    walked = dvc_hash(repo.root / "data/images", [], {})
    reused = dvc_hash(repo.root / "data/images", [], {}, listed.files)
    assert walked is not None and reused is not None
    assert reused.files == walked.files
    assert reused.digest == walked.digest == md5_in(repo.root / "data/images.dvc")


def test_touching_every_file_of_a_dataset_re_verifies_it_without_importing_dvc(
    repo: Workspace,
) -> None:
    assert statuses(repo.run_json()) == {"listing": "ran"}
    earlier = time.time_ns() - 60 * 10**9  # changed
    for path in (repo.root / "data/images").rglob("*"):
        if path.is_file():
            os.utime(path, ns=(earlier, earlier))
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)  # and old enough to trust (by their ctime)
    assert repo.cli_python(NO_DVC_PROBE).stdout.strip().splitlines()[-1] == "0 False"
    record = json.loads((repo.root / ".mlbuild/data/images.json").read_text())
    assert record["version"] == md5_in(repo.root / "data/images.dvc")
    assert sorted(record["md5"]) == [
        "a.png",
        "b.txt",
        "nested/a-b",
        "nested/deeper/z",
        "nested/ü ñ.csv",
    ]
    assert statuses(repo.run_json()) == {"listing": "cached"}


def test_a_first_run_over_present_dvc_data_does_not_import_dvc(repo: Workspace) -> None:
    assert repo.cli_python(NO_DVC_PROBE).stdout.strip().splitlines()[-1] == "0 False"


def test_changed_content_is_still_refused_with_dvcs_verdict(repo: Workspace) -> None:
    repo.run_json()
    (repo.root / "data/images/nested/deeper/z").write_bytes(b"edited by hand")
    done = repo.cli("run")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "mlbuild: step 'listing' failed: dataset 'images': data/images differs from the version "
        "in data/images.dvc"
    )


def test_a_no_op_run_reads_the_short_summary_and_still_sees_every_change(repo: Workspace) -> None:
    # a no-op run compares one hash of the files' stats with .mlbuild/data/verified/NAME.json
    # instead of reading the whole record; a same-size edit or a new file must still be seen
    assert statuses(repo.run_json()) == {"listing": "ran"}
    summary_file = repo.root / ".mlbuild/data/verified/images.json"
    # as a workspace whose record an earlier mlbuild wrote (the first run wrote none when a file
    # was younger than the racy window: its summary could not have matched)
    summary_file.unlink(missing_ok=True)
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.05)  # every file old enough to be remembered
    assert statuses(repo.run_json()) == {"listing": "cached"}
    summary = json.loads(summary_file.read_text())
    assert summary["version"] == md5_in(repo.root / "data/images.dvc")
    (repo.root / ".mlbuild/data/images.json").write_text("{damaged")  # not read when unchanged
    assert repo.cli_python(NO_DVC_PROBE).stdout.strip().splitlines()[-1] == "0 False"
    (repo.root / "data/images/a.png").write_bytes(bytes(reversed(range(256))) * 5)  # same size
    refused = repo.cli("run")
    assert refused.returncode == 1
    assert "data/images differs from the version in data/images.dvc" in refused.stderr
    (repo.root / "data/images/a.png").write_bytes(bytes(range(256)) * 5)  # as DVC recorded it
    assert statuses(repo.run_json()) == {"listing": "cached"}
    (repo.root / "data/images/new.png").write_bytes(b"one more")
    added = repo.cli("run")
    assert added.returncode == 1
    assert "data/images differs from the version in data/images.dvc" in added.stderr


def test_a_deleted_dataset_is_checked_out_again_from_the_dvc_cache(repo: Workspace) -> None:
    repo.run_json()
    shutil.rmtree(repo.root / "data/images")
    done = repo.cli("run", "--force")
    assert done.returncode == 0, done.stderr
    assert (repo.root / "data/images/a.png").read_bytes() == bytes(range(256)) * 5


def test_a_damaged_md5_record_costs_a_re_read_not_a_wrong_answer(repo: Workspace) -> None:
    repo.run_json()
    record_file = repo.root / ".mlbuild/data/images.json"
    record = json.loads(record_file.read_text())
    record["md5"] = {"a.png": "not an md5; rm -rf /"}
    record["files"] = []
    record_file.write_text(json.dumps(record))
    assert repo.cli_python(NO_DVC_PROBE).stdout.strip().splitlines()[-1] == "0 False"
    assert statuses(repo.run_json()) == {"listing": "cached"}


def test_a_dvc2_text_hash_is_left_to_dvc(repo: Workspace) -> None:
    dvc_file = repo.root / "data/images.dvc"
    dvc_file.write_text(dvc_file.read_text().replace("  hash: md5\n", ""))
    done = repo.cli_python(NO_DVC_PROBE)
    # DVC 2 hashes b.txt with its CRLF turned into LF: DVC itself now calls the copy modified
    assert done.stdout.strip().splitlines()[-1] == "1 True", done.stderr
    assert "data/images differs from the version in data/images.dvc" in done.stderr


def test_a_dvcignore_with_patterns_is_left_to_dvc(repo: Workspace) -> None:
    (repo.root / "data/.dvcignore").write_text("# comment\n*.tmp\n")
    done = repo.cli_python(NO_DVC_PROBE)
    assert done.stdout.strip().splitlines()[-1] == "0 True", done.stderr


def test_a_file_written_within_the_last_second_is_not_remembered_by_its_stat(
    repo: Workspace,
) -> None:
    # in-process: the stamp is the ctime, which cannot be set ahead as an mtime can, so the
    # rewrite and the record must fall within one racy window; a CLI run may take longer to start
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)  # the fixture's files: old enough to trust
    rewritten = repo.root / "data/images/b.txt"
    rewritten.write_bytes(rewritten.read_bytes())  # written again just now
    hashed = dvc_hash(repo.root / "data/images", [], {})
    assert hashed is not None
    record = _trusted(hashed.digest, hashed)
    assert "b.txt" not in record.md5
    assert "b.txt" not in [f[0] for f in record.files]
    assert sorted(record.md5) == ["a.png", "nested/a-b", "nested/deeper/z", "nested/ü ñ.csv"]


def test_a_symlinked_directory_inside_a_dataset_is_left_out_as_dvc_leaves_it_out(
    repo: Workspace,
) -> None:
    # `dvc status` calls the dataset unchanged with these links in it: DVC does not follow a
    # symlinked directory. A link back up the tree must not be walked forever either.
    (repo.root / "data/images/loop").symlink_to(".")
    (repo.root / "data/images/up").symlink_to("../..")
    assert statuses(repo.run_json()) == {"listing": "ran"}
    assert statuses(repo.run_json()) == {"listing": "cached"}
    record = json.loads((repo.root / ".mlbuild/data/images.json").read_text())
    assert sorted(f[0] for f in record["files"]) == [
        "a.png",
        "b.txt",
        "nested/a-b",
        "nested/deeper/z",
        "nested/ü ñ.csv",
    ]
