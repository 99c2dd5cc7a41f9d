"""A directory's listing, hashed folder by folder from packed records, never answers stale.

The listing memo (``dirs`` in ``.mlbuild/state.db``) lets a no-op run compare one hash instead
of 100,000 stats. Each test saves it in one Cache and checks what a new process answers after the
directory changed in a way a packed record could miss, or after the memo itself was written by
an older mlbuild, damaged, or written by two processes at once.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mlbuild.cache import Cache
from mlbuild.cache.hashing import Hasher
from mlbuild.cache.state import StateTable
from tests.cache.test_cache import age, fresh
from tests.conftest import write_tree

FILES = {f"f{i:02d}.bin": bytes([i]) * 64 for i in range(10)}
TREE = {"data": {"a": dict(FILES), "b": dict(FILES), "top.bin": b"t" * 64}}


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache.open(tmp_path, tmp_path / ".mlbuild")


def remembered(cache: Cache, path: str = "data") -> Cache:
    """Hash ``path``, save the state table, and return a new process's cache that answers the
    unchanged directory from its memo alone."""
    assert cache.hasher.digest(path) is not None
    cache.state.save()
    again = fresh(cache)
    assert again.hasher.digest(path) is not None
    assert again.hasher.stats.files_hashed == 0
    return fresh(cache)


def truth(tmp_path: Path, path: str = "data") -> str:
    """The directory's digest from an empty state table: every byte read."""
    digest = Hasher(tmp_path, StateTable(tmp_path / "empty.db")).digest(path)
    assert digest is not None
    return digest.value


def answer(cache: Cache, path: str = "data") -> str:
    digest = cache.hasher.digest(path)
    assert digest is not None
    return digest.value


def test_a_file_rewritten_keeping_its_size_and_mtime_is_read_again(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, TREE)
    age(tmp_path / "data", 20)
    again = remembered(cache)
    path = tmp_path / "data/a/f04.bin"
    before = path.stat()
    with open(path, "r+b") as f:  # the same inode and size
        f.write(b"\xee" * 64)
    os.utime(
        path, ns=(before.st_atime_ns, before.st_mtime_ns)
    )  # the mtime set back: the ctime moved
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert answer(again) == truth(tmp_path)
    assert again.hasher.stats.files_hashed == 1


def test_a_file_replaced_by_a_symlink_to_other_bytes_is_read_again(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {**TREE, "elsewhere.bin": b"\x05" * 63 + b"!"})
    age(tmp_path / "elsewhere.bin", 20)
    age(tmp_path / "data", 20)
    again = remembered(cache)
    (tmp_path / "data/a/f05.bin").unlink()
    os.symlink(tmp_path / "elsewhere.bin", tmp_path / "data/a/f05.bin")  # same size, old file
    assert answer(again) == truth(tmp_path)


def test_a_file_replaced_by_a_folder_is_seen(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, TREE)
    age(tmp_path / "data", 20)
    again = remembered(cache)
    (tmp_path / "data/a/f06.bin").unlink()
    write_tree(tmp_path / "data/a", {"f06.bin": {"inner": bytes([6]) * 64}})
    assert answer(again) == truth(tmp_path)


def test_a_folder_renamed_with_the_same_files_changes_the_digest(
    cache: Cache, tmp_path: Path
) -> None:
    # the names inside and every stat stay the same (a rename keeps inodes): only the folder's
    # path in each packed record tells the two listings apart
    write_tree(tmp_path, {"data": {"a": dict(FILES), "top.bin": b"t"}})
    age(tmp_path / "data", 20)
    first = truth(tmp_path)
    again = remembered(cache)
    os.rename(tmp_path / "data/a", tmp_path / "data/c")
    assert answer(again) == truth(tmp_path) != first


def test_files_moved_between_folders_change_the_digest(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, {"data": {"a": {"x": "1", "y": "2"}, "b": {}}})
    age(tmp_path / "data", 20)
    again = remembered(cache)
    os.rename(tmp_path / "data/a/y", tmp_path / "data/b/y")
    assert answer(again) == truth(tmp_path)


def test_100000_names_with_one_not_utf8_are_remembered_and_each_change_seen(
    cache: Cache, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    for folder in range(10):
        os.makedirs(data / f"{folder}")
        for i in range(10_000):
            os.close(os.open(data / f"{folder}/{i:05d}", os.O_CREAT | os.O_WRONLY, 0o644))
    odd = data / os.fsdecode(b"5/caf\xe9.bin")  # not UTF-8: a surrogate-escaped name
    odd.write_bytes(b"odd")
    age(data, 20)
    again = remembered(cache)
    assert again.hasher.stats.files_hashed == 0
    odd.write_bytes(b"new")  # the same size
    assert answer(again) == truth(tmp_path)
    assert again.hasher.stats.files_hashed == 1
    third = fresh(again)
    (data / "9/09999").write_bytes(b"")
    assert answer(third) == truth(tmp_path)


def old_listing(found: list[tuple[str, os.stat_result]]) -> str:
    """The listing hash as mlbuild wrote it before packed records: a line of text per file."""
    from blake3 import blake3

    text = "".join(
        f"{len(rel)}:{rel}{st.st_ino},{st.st_size},{st.st_ctime_ns},{st.st_mode & 0o100};"
        for rel, st in found
    )
    return str(blake3(text.encode("utf-8", "surrogateescape")).hexdigest())


def test_a_memo_from_before_packed_listings_is_checked_by_rows_and_written_anew(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, TREE)
    age(tmp_path / "data", 20)
    digest = cache.hasher.digest("data")
    assert digest is not None and digest.manifest is not None
    cache.state.save()
    rels = sorted(str(p.relative_to(tmp_path / "data")) for p in (tmp_path / "data").rglob("*.bin"))
    old = old_listing([(rel, (tmp_path / "data" / rel).stat()) for rel in rels])
    with sqlite3.connect(cache.state.db_path) as db:  # the memo as the older mlbuild kept it
        db.execute("UPDATE dirs SET listing = ? WHERE path = 'data'", (old,))
    again = fresh(cache)
    assert answer(again) == digest.value
    assert again.hasher.stats.files_hashed == 0  # the files' rows still answered
    again.state.save()
    with sqlite3.connect(cache.state.db_path) as db:
        assert db.execute("SELECT listing FROM dirs WHERE path = 'data'").fetchone() != (old,)
    third = fresh(again)
    assert answer(third) == digest.value
    assert third.hasher.stats.files_hashed == 0


@pytest.mark.parametrize(
    "listing",
    [b"\x00\xff not text", "truncat", "", 12345, None],
    ids=["blob", "truncated", "empty", "number", "null"],
)
def test_a_damaged_memo_is_rebuilt_not_a_traceback(
    cache: Cache, tmp_path: Path, listing: object
) -> None:
    write_tree(tmp_path, TREE)
    age(tmp_path / "data", 20)
    cache.hasher.digest("data")
    cache.state.save()
    (tmp_path / "data/b/f01.bin").write_bytes(b"\x99" * 64)  # changed after the memo
    with sqlite3.connect(cache.state.db_path) as db:
        db.execute("UPDATE dirs SET listing = ? WHERE path = 'data'", (listing,))
    again = fresh(cache)
    assert answer(again) == truth(tmp_path)
    again.state.save()
    assert answer(fresh(again)) == truth(tmp_path)


HASH_AND_SAVE = """
import sys
from pathlib import Path
from mlbuild.cache import Cache
root = Path(sys.argv[1])
for _ in range(int(sys.argv[3])):
    cache = Cache.open(root, root / ".mlbuild")
    digest = cache.hasher.digest(sys.argv[2])
    cache.state.save()
print(digest.value)
"""


def test_two_processes_saving_the_state_at_once_leave_true_answers(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": TREE["data"], "other": TREE["data"]})
    age(tmp_path / "data", 20)
    age(tmp_path / "other", 20)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-c", HASH_AND_SAVE, str(tmp_path)]
    procs = [
        subprocess.Popen([*argv, path, "15"], stdout=subprocess.PIPE, text=True, env=env)
        for path in ("data", "other", "data")
    ]
    outs = [proc.communicate(timeout=120)[0].strip() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    assert outs == [truth(tmp_path, "data"), truth(tmp_path, "other"), truth(tmp_path, "data")]
    again = fresh(cache)
    assert (answer(again, "data"), answer(again, "other")) == (outs[0], outs[1])
    assert again.hasher.stats.files_hashed == 0
    shutil.rmtree(tmp_path / "other/a")
    assert answer(fresh(again), "other") == truth(tmp_path, "other")
