"""A directory hashed as a whole: its files' rows and its listing memo never answer stale.

Each test hashes in one Cache, saves the state table, and checks what a new process (a fresh
Cache on the same state.db) answers after the directory changed in a way its memo could miss.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.cache import Cache
from mlbuild.cache.hashing import Hasher, ManifestEntry, manifest_digest
from mlbuild.cache.state import StateTable
from tests.cache.test_cache import age, fresh
from tests.conftest import write_tree

FILES = {f"f{i:02d}.bin": bytes([i]) * 64 for i in range(20)}


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache.open(tmp_path, tmp_path / ".mlbuild")


def hashed(cache: Cache, path: str = "data") -> Cache:
    """Hash ``path`` in ``cache``, save the state table, and return a new process's cache."""
    assert cache.hasher.digest(path) is not None
    cache.state.save()
    return fresh(cache)


def truth(tmp_path: Path, path: str = "data") -> str:
    """The directory's digest from an empty state table: every byte read."""
    digest = Hasher(tmp_path, StateTable(tmp_path / "empty.db")).digest(path)
    assert digest is not None
    return digest.value


def test_an_unchanged_directory_is_answered_by_its_memo_and_its_manifest_on_demand(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": {**FILES, "sub": {"x.txt": "x"}}})
    age(tmp_path / "data")
    first = cache.hasher.digest("data")
    again = hashed(cache)
    digest = again.hasher.digest("data")
    assert digest is not None and first is not None
    assert (digest.value, digest.size) == (first.value, first.size)
    assert again.hasher.stats.files_hashed == 0
    # the manifest, built when asked from the directory's rows, is the one every byte gives
    assert digest.manifest == first.manifest
    assert again.hasher.stats.files_hashed == 0
    assert digest.manifest is not None
    assert manifest_digest(digest.manifest) == digest.value


def test_a_file_rewritten_in_place_changes_the_digest_though_the_folder_mtime_does_not(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": FILES})
    age(tmp_path / "data", 20)
    again = hashed(cache)
    folder_mtime = (tmp_path / "data").stat().st_mtime_ns
    with open(tmp_path / "data/f07.bin", "r+b") as f:  # same inode, same size
        f.write(b"\xff" * 64)
    age(tmp_path / "data/f07.bin", 5)
    assert (tmp_path / "data").stat().st_mtime_ns == folder_mtime
    digest = again.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)
    # only the rewritten file was read again; the others came from the directory's rows
    assert (again.hasher.stats.files_hashed, again.hasher.stats.files_from_state) == (1, 19)


def test_a_just_written_file_rewritten_with_its_stat_restored_is_read_again(
    cache: Cache, tmp_path: Path
) -> None:
    # git's "racy clean": written within the racy window, then rewritten in the same tick, so
    # its stat (inode, size, mtime) is unchanged; neither its row nor the memo may be trusted
    write_tree(tmp_path, {"data": FILES})
    age(tmp_path / "data", 20)
    path = tmp_path / "data/f03.bin"
    path.write_bytes(b"a" * 64)
    before = path.stat()
    again = hashed(cache)
    path.write_bytes(b"b" * 64)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns
    digest = again.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)
    assert again.hasher.stats.files_hashed == 1


def test_a_symlink_swapped_inside_the_directory_changes_the_digest(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": {"a.bin": "1" * 10}, "one": "x" * 10, "two": "y" * 10})
    os.symlink(tmp_path / "one", tmp_path / "data/link")
    age(tmp_path / "data")
    age(tmp_path / "one")
    age(tmp_path / "two")
    again = hashed(cache)
    (tmp_path / "data/link").unlink()
    os.symlink(tmp_path / "two", tmp_path / "data/link")  # same size, older than the window
    digest = again.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)


def test_the_executable_bit_alone_changes_the_digest_in_a_new_process(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": FILES})
    age(tmp_path / "data")
    first = cache.hasher.digest("data")
    again = hashed(cache)
    os.chmod(tmp_path / "data/f01.bin", 0o755)
    digest = again.hasher.digest("data")
    assert digest is not None and first is not None and digest.value != first.value
    assert digest.value == truth(tmp_path)


def test_a_file_added_or_removed_changes_the_digest(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, {"data": FILES})
    age(tmp_path / "data")
    again = hashed(cache)
    (tmp_path / "data/f00.bin").unlink()
    digest = again.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)
    third = hashed(again)
    (tmp_path / "data/new.bin").write_bytes(b"")
    digest = third.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)


def test_a_state_table_from_before_directory_rows_is_moved_over_without_rereading(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, {"data": FILES, "single.txt": "s"})
    # old enough, and never touched since written: the mtime the old rows hold is the ctime
    # the table trusts now (a file whose mtime was set back is read once more)
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)
    db = tmp_path / ".mlbuild/state.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:  # the old layout: every file by its full path
        conn.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, inode INTEGER, size INTEGER, "
            "mtime_ns INTEGER, digest TEXT)"
        )
        rows = []
        for rel in [*(f"data/{name}" for name in FILES), "single.txt"]:
            st = (tmp_path / rel).stat()
            assert st.st_mtime_ns == st.st_ctime_ns
            digest = Hasher(tmp_path, StateTable(tmp_path / "x.db")).digest(rel)
            assert digest is not None
            rows.append((rel, st.st_ino, st.st_size, st.st_mtime_ns, digest.value))
        conn.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)", rows)
    cache = Cache.open(tmp_path, tmp_path / ".mlbuild")
    digest = cache.hasher.digest("data")
    assert digest is not None and digest.value == truth(tmp_path)
    assert cache.hasher.stats.files_hashed == 0
    cache.state.save()
    with sqlite3.connect(db) as conn:
        left = [row[0] for row in conn.execute("SELECT path FROM files")]
        moved = conn.execute("SELECT count(*) FROM dir_files WHERE dir = 'data'").fetchone()
    assert left == ["single.txt"]
    assert moved == (20,)
    again = fresh(cache)
    assert again.hasher.digest("single.txt") is not None
    assert again.hasher.digest("data") == digest
    assert again.hasher.stats.files_hashed == 0


def test_a_memo_of_a_directory_that_held_just_written_files_is_not_saved(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"data": FILES})  # all just written
    cache.hasher.digest("data")
    cache.state.save()
    with sqlite3.connect(tmp_path / ".mlbuild/state.db") as conn:
        assert conn.execute("SELECT count(*) FROM dirs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM dir_files").fetchone() == (0,)


def test_manifest_entries_are_plain_tuples_equal_to_their_fields() -> None:
    entry = ManifestEntry("a/b.bin", "ab" * 32, 3, False)
    assert entry == ManifestEntry(relpath="a/b.bin", digest="ab" * 32, size=3, executable=False)
    assert (entry.relpath, entry.digest, entry.size, entry.executable) == tuple(entry)


def test_the_walk_in_threads_finds_what_one_thread_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.cache import hashing

    write_tree(
        tmp_path,
        {
            "data": {
                "top.txt": "t",
                "a": {"x": "1", "deep": {"y": "2"}},
                "a.txt": "sorts before a/",
                "b": {"z": "3"},
                "__pycache__": {"skip": "?"},
                "empty": {},
            },
            "elsewhere": {"w": "4"},
        },
    )
    os.symlink(tmp_path / "elsewhere", tmp_path / "data/linked")
    monkeypatch.setattr(hashing, "_WALKERS", 4)
    threaded = hashing._found(hashing._walk(str(tmp_path / "data")))
    monkeypatch.setattr(hashing, "_WALKERS", 1)
    alone = hashing._found(hashing._walk(str(tmp_path / "data")))
    assert [(rel, full) for rel, full, _ in threaded] == [(rel, full) for rel, full, _ in alone]
    assert [rel for rel, _, _ in alone] == [
        "a.txt",
        "a/deep/y",
        "a/x",
        "b/z",
        "linked/w",
        "top.txt",
    ]


def test_the_walk_through_folder_descriptors_stats_what_each_full_path_names(
    tmp_path: Path,
) -> None:
    """Each folder is listed through its descriptor (a name's stat, not a full path's): every
    file's stat is still the stat of its own full path, links followed, odd names included."""
    from mlbuild.cache import hashing

    write_tree(tmp_path, {"data": {"a": {"x": "1"}, "f.txt": "22"}, "out": {"w": "333"}})
    (tmp_path / "target.bin").write_bytes(b"4444")
    os.symlink(tmp_path / "target.bin", tmp_path / "data/a/to-file")
    os.symlink(tmp_path / "out", tmp_path / "data/to-dir")
    odd = os.fsdecode(b"caf\xe9.bin")  # not UTF-8: a surrogate-escaped name
    (tmp_path / "data" / odd).write_bytes(b"55555")
    found = hashing._found(hashing._walk(str(tmp_path / "data")))
    assert [rel for rel, _, _ in found] == ["a/to-file", "a/x", odd, "f.txt", "to-dir/w"]
    for rel, full, st in found:
        assert full == f"{tmp_path}/data/{rel}"
        now = os.stat(full)  # links followed, as the hash reads them
        assert (st.st_ino, st.st_size, st.st_mtime_ns) == (now.st_ino, now.st_size, now.st_mtime_ns)
