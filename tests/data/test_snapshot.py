"""A dataset's verified stats and its ``.dvc`` file's memo never answer stale.

Each test builds a DVC-tracked dataset by hand (a ``.dvc`` folder and ``data/raw.dvc`` holding the
md5 that DVC would record, computed by mlbuild.data.md5: no DVC needed), has it verified by one
``DataSources`` (a run), changes it in a way a memo could miss, and checks what the next run's
``DataSources`` answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.data import DatasetSpec, DataSources
from mlbuild.data import version as version_module
from mlbuild.data.md5 import dvc_hash
from mlbuild.data.snapshot import is_verified, read_record, snapshot
from mlbuild.data.version import TrackedOut, recorded_out

SPEC = {"raw": DatasetSpec("raw", "data/raw")}


def dvc_file(root: Path, digest: str) -> None:
    (root / "data/raw.dvc").write_text(
        f"outs:\n- md5: {digest}\n  hash: md5\n  path: raw\n", encoding="utf-8"
    )


def tracked(root: Path, files: dict[str, bytes]) -> str:
    """``data/raw`` holding ``files``, DVC-tracked by a hand-written ``data/raw.dvc``; all of it
    older than the racy window. Its DVC hash."""
    (root / ".dvc").mkdir(exist_ok=True)
    for rel, body in files.items():
        (root / "data/raw" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "data/raw" / rel).write_bytes(body)
    hashed = dvc_hash(root / "data/raw", [], {})
    assert hashed is not None
    dvc_file(root, hashed.digest)
    wait_out_racy_window()
    return hashed.digest


def wait_out_racy_window() -> None:
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.05)


def run(root: Path) -> str:
    """The dataset's version as a run sees it (a new DataSources: a new process's view)."""
    return DataSources(root, root / ".mlbuild", SPEC).version("raw").hash


FILES = {f"{d}/{i}.bin": bytes([i]) * 16 for d in "ab" for i in range(5)}


def refused(root: Path, digest: str | None = None) -> bool:
    """Whether the next run must check the files again: neither the short summary nor the full
    record answers the copy as verified (the check itself, which asks DVC when the data differs,
    is tests/data/test_dvc_md5.py's)."""
    meta = root / ".mlbuild"
    now = snapshot(root / "data/raw")
    assert now is not None
    digest = digest or json.loads((meta / "data/raw.json").read_text())["version"]
    record = read_record(meta, "raw")
    in_record = record is not None and record.version == digest and record.files == now.files
    return not is_verified(meta, "raw", digest, now) and not in_record


def test_an_unchanged_dataset_is_answered_from_the_summary(tmp_path: Path) -> None:
    digest = tracked(tmp_path, FILES)
    assert run(tmp_path) == digest
    wait_out_racy_window()
    assert run(tmp_path) == digest
    (tmp_path / ".mlbuild/data/raw.json").write_text("{damaged")  # never read when unchanged
    assert run(tmp_path) == digest


def test_a_file_rewritten_keeping_its_size_and_mtime_is_refused(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    run(tmp_path)
    path = tmp_path / "data/raw/a/3.bin"
    before = path.stat()
    with open(path, "r+b") as f:
        f.write(b"\xee" * 16)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # only the ctime moved
    assert refused(tmp_path)


def test_a_file_replaced_by_a_symlink_to_other_bytes_is_refused(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    (tmp_path / "elsewhere.bin").write_bytes(b"\x03" * 15 + b"!")
    run(tmp_path)
    (tmp_path / "data/raw/a/3.bin").unlink()
    os.symlink(tmp_path / "elsewhere.bin", tmp_path / "data/raw/a/3.bin")
    assert refused(tmp_path)


def test_a_file_replaced_by_a_folder_is_refused(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    run(tmp_path)
    (tmp_path / "data/raw/a/3.bin").unlink()
    (tmp_path / "data/raw/a/3.bin").mkdir()
    (tmp_path / "data/raw/a/3.bin/inner").write_bytes(bytes([3]) * 16)
    assert refused(tmp_path)


def test_a_folder_renamed_is_refused(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    run(tmp_path)
    os.rename(tmp_path / "data/raw/b", tmp_path / "data/raw/c")  # every stat kept
    assert refused(tmp_path)
    os.rename(tmp_path / "data/raw/c", tmp_path / "data/raw/b")
    assert not refused(tmp_path)  # back as verified


def test_100000_names_with_one_not_utf8_are_verified_and_a_change_refused(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "data/raw"
    for folder in range(10):
        os.makedirs(raw / f"{folder}")
        for i in range(10_000):
            os.close(os.open(raw / f"{folder}/{i:05d}", os.O_CREAT | os.O_WRONLY, 0o644))
    digest = tracked(tmp_path, {os.fsdecode(b"5/caf\xe9.bin"): b"odd"})
    assert run(tmp_path) == digest
    summary = json.loads((tmp_path / ".mlbuild/data/verified/raw.json").read_text())
    assert summary["version"] == digest  # the no-op's one hash was written
    (raw / os.fsdecode(b"5/caf\xe9.bin")).write_bytes(b"new")
    assert refused(tmp_path)


@pytest.mark.parametrize(
    "summary",
    ["{damaged", "", "[1, 2]", '{"version": 3, "stats": null}', "old"],
    ids=["torn", "empty", "a list", "wrong types", "an older mlbuild's"],
)
def test_a_damaged_or_old_summary_is_checked_against_the_record_and_written_anew(
    tmp_path: Path, summary: str
) -> None:
    digest = tracked(tmp_path, FILES)
    run(tmp_path)
    wait_out_racy_window()
    run(tmp_path)
    path = tmp_path / ".mlbuild/data/verified/raw.json"
    if summary == "old":  # its hash under "files", of the text encoding
        summary = json.dumps({"version": digest, "files": "0" * 64})
    path.write_text(summary)
    assert run(tmp_path) == digest
    assert json.loads(path.read_text())["version"] == digest
    (tmp_path / "data/raw/b/1.bin").write_bytes(b"\x99" * 16)
    assert refused(tmp_path)


# ---- the .dvc file's memo ----------------------------------------------------------------------


def test_an_unchanged_dvc_file_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = tracked(tmp_path, FILES)
    assert run(tmp_path) == digest

    def parse(*_: object) -> None:
        raise AssertionError("the .dvc file was parsed")

    monkeypatch.setattr(version_module, "find_dvc_out", parse)
    assert run(tmp_path) == digest


def test_a_no_op_and_a_touched_file_import_no_yaml(tmp_path: Path) -> None:
    digest = tracked(tmp_path, FILES)
    run(tmp_path)
    probe = (
        "import sys\nfrom pathlib import Path\nfrom mlbuild.data import DataSources, DatasetSpec\n"
        f"root = Path({str(tmp_path)!r})\n"
        "v = DataSources(root, root / '.mlbuild', {'raw': DatasetSpec('raw', 'data/raw')})\n"
        "print(v.version('raw').hash, 'yaml' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for change in (None, "touch"):
        if change:
            os.utime(tmp_path / "data/raw/a/1.bin")
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.split() == [digest, "False"]


def test_a_dvc_file_edited_keeping_its_size_and_mtime_is_parsed_again(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    run(tmp_path)
    (tmp_path / "data/raw/a/0.bin").write_bytes(b"\x42" * 16)
    other = dvc_hash(tmp_path / "data/raw", [], {})
    assert other is not None
    before = (tmp_path / "data/raw.dvc").stat()
    dvc_file(tmp_path, other.digest)  # the same size: one md5 for another
    os.utime(tmp_path / "data/raw.dvc", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (tmp_path / "data/raw.dvc").stat().st_size == before.st_size
    assert run(tmp_path) == other.digest


def test_a_dvc_file_written_within_the_racy_window_is_not_remembered(tmp_path: Path) -> None:
    # edited again in the same timestamp tick, its stat would not change: a memo of it would
    # answer the first edit's md5 for the second's
    tracked(tmp_path, FILES)
    dvc_file(tmp_path, "ab" * 16)  # just now
    found = recorded_out(tmp_path, tmp_path / ".mlbuild", "data/raw")
    assert found is not None and found.digest == "ab" * 16
    assert not (tmp_path / ".mlbuild/data/dvcfiles").exists()
    wait_out_racy_window()
    recorded_out(tmp_path, tmp_path / ".mlbuild", "data/raw")
    assert len(list((tmp_path / ".mlbuild/data/dvcfiles").iterdir())) == 1


def test_a_dvc_file_replaced_by_another_file_is_parsed_again(tmp_path: Path) -> None:
    tracked(tmp_path, FILES)
    run(tmp_path)
    (tmp_path / "data/raw.dvc").unlink()  # its inode may be reused by the next file
    dvc_file(tmp_path, "cd" * 16)
    wait_out_racy_window()
    assert recorded_out(tmp_path, tmp_path / ".mlbuild", "data/raw") == TrackedOut(
        "cd" * 16, "data/raw.dvc", "md5"
    )


@pytest.mark.parametrize(
    "memo",
    [
        "{torn",
        "",
        "null",
        '{"path": "data/raw", "stamp": "x"}',
        "SAME_STAMP_WRONG_TYPES",
        "SAME_STAMP_OTHER_PATH",
    ],
)
def test_a_damaged_dvc_file_memo_is_parsed_anew_not_a_traceback(tmp_path: Path, memo: str) -> None:
    digest = tracked(tmp_path, FILES)
    run(tmp_path)
    [path] = (tmp_path / ".mlbuild/data/dvcfiles").iterdir()
    good = json.loads(path.read_text())
    if memo == "SAME_STAMP_WRONG_TYPES":
        memo = json.dumps({**good, "digest": 7, "hash_name": None})
    elif memo == "SAME_STAMP_OTHER_PATH":
        memo = json.dumps({**good, "path": "data/other", "digest": "2" * 32})
    path.write_text(memo)
    assert run(tmp_path) == digest
    assert json.loads(path.read_text()) == good  # written anew


CONCURRENT = """
import sys
from pathlib import Path
from mlbuild.data import DataSources, DatasetSpec
root = Path(sys.argv[1])
for _ in range(20):
    v = DataSources(root, root / '.mlbuild', {'raw': DatasetSpec('raw', 'data/raw')})
    print(v.version('raw').hash)
"""


def test_two_processes_verifying_at_once_leave_true_answers(tmp_path: Path) -> None:
    digest = tracked(tmp_path, FILES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outs]
    assert {line for out, _ in outs for line in out.split()} == {digest}
    shutil.rmtree(tmp_path / "data/raw/b")
    assert refused(tmp_path)
