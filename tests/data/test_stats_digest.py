"""The one hash a no-op run compares for a dataset's stats: equal exactly when the stats are."""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from pathlib import Path

from mlbuild.data.md5 import dvc_hash
from mlbuild.data.snapshot import (
    Record,
    Snapshot,
    _Folder,
    is_verified,
    read_record,
    snapshot,
    write_record,
    write_verified,
)


def packed(*folders: tuple[str, list[str], list[int]]) -> Snapshot:
    return Snapshot([_Folder(rel, names, array("q", stats)) for rel, names, stats in folders])


def test_names_that_could_pass_for_fields_or_entries_hash_apart() -> None:
    # without the length prefixes a name could borrow bytes of the next field or entry
    pairs = [
        (packed(("", ["a1"], [2, 3, 4])), packed(("", ["a"], [12, 3, 4]))),
        (
            packed(("", ["a", "b"], [1, 2, 3, 4, 5, 6])),
            packed(("", ["a", "b"], [1, 2, 3, 4, 5, 7])),
        ),
        (packed(("", ["x\0y"], [1, 1, 1, 1, 1, 1])), packed(("", ["x", "y"], [1, 1, 1, 1, 1, 1]))),
        (packed(("a/", ["b"], [1, 2, 3])), packed(("", ["a/b"], [1, 2, 3]))),
        (packed(("a/", ["x"], [1, 2, 3])), packed(("b/", ["x"], [1, 2, 3]))),
        (packed(("a/", [], []), ("b/", ["x"], [1, 2, 3])), packed(("a/", ["x"], [1, 2, 3]))),
        (packed(), packed(("", [""], [0, 0, 0]))),
    ]
    for one, other in pairs:
        assert one.digest != other.digest, (one.files, other.files)
    assert packed(("", ["a"], [1, 2, 3])).digest == packed(("", ["a"], [1, 2, 3])).digest


def test_a_file_name_of_other_bytes_than_utf8_is_hashed(tmp_path: Path) -> None:
    os.makedirs(tmp_path / "d")
    (tmp_path / os.fsdecode(b"d/caf\xe9.bin")).write_bytes(b"x")
    now = snapshot(tmp_path / "d")
    assert now is not None and now.files[0][0] == "caf\udce9.bin"
    assert len(now.digest) == 64


def test_an_inode_number_past_2_to_the_63_packs_and_reads_back() -> None:
    big = (1 << 64) - 5
    one = Snapshot([_Folder("", ["a"], array("q", [big - (1 << 64), 2, 3]))])
    assert one.files == [["a", big, 2, 3]]


def test_a_file_rewritten_in_place_with_the_same_size_is_not_verified(tmp_path: Path) -> None:
    os.makedirs(tmp_path / "d/sub")
    (tmp_path / "d/sub/a.bin").write_bytes(b"aaaa")
    old = 1_600_000_000_000_000_000
    os.utime(tmp_path / "d/sub/a.bin", ns=(old, old))
    meta = tmp_path / ".mlbuild"
    files = snapshot(tmp_path / "d")
    assert files is not None
    write_verified(meta, "ds", "v1", files)
    assert is_verified(meta, "ds", "v1", snapshot(tmp_path / "d") or Snapshot([]))
    folder = (tmp_path / "d/sub").stat().st_mtime_ns
    with open(tmp_path / "d/sub/a.bin", "r+b") as f:  # same inode and size, a new mtime
        f.write(b"bbbb")
    assert (tmp_path / "d/sub").stat().st_mtime_ns == folder  # a folder memo would miss it
    assert not is_verified(meta, "ds", "v1", snapshot(tmp_path / "d") or Snapshot([]))
    assert not is_verified(meta, "ds", "v2", files)


def test_the_snapshot_is_sorted_by_relpath_as_dvcs_manifest_is(tmp_path: Path) -> None:
    for rel in ["a/x", "a.txt", "a0", "b/c/d", "a/b/c"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    now = snapshot(tmp_path)
    assert now is not None
    assert [f[0] for f in now.files] == ["a.txt", "a/b/c", "a/x", "a0", "b/c/d"]


def test_the_dvc_manifest_text_is_what_json_dumps_writes_for_any_name(tmp_path: Path) -> None:
    # dvc_hash writes DVC's `.dir` manifest without building a dict per file; names that JSON
    # escapes (quotes, backslashes, controls, non-ASCII, bytes that are not UTF-8) must come
    # out as json.dumps(..., sort_keys=True) writes them, or the hash is not DVC's
    names = ['q"uo\\te', "tab\tnl", "ü ñ.csv", "😀", os.fsdecode(b"caf\xe9"), "sub/plain.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode("utf-8", "surrogateescape"))
    hashed = dvc_hash(tmp_path, [], {})
    assert hashed is not None
    manifest = [
        {"md5": hashlib.md5((tmp_path / rel).read_bytes()).hexdigest(), "relpath": rel}
        for rel in sorted(names)
    ]
    body = json.dumps(manifest, sort_keys=True).encode("utf-8")
    assert hashed.digest == hashlib.md5(body).hexdigest() + ".dir"


def test_a_dataset_record_round_trips(tmp_path: Path) -> None:
    now = packed(("", ["a"], [1, 2, 3]))
    record = Record("abc.dir", [["a", 1, 2, 3]], {"repo": "r"}, {"a": "0" * 32})
    write_record(tmp_path, "ds", record, now)
    assert read_record(tmp_path, "ds") == record
    assert is_verified(tmp_path, "ds", "abc.dir", now)
    damaged = Record("abc.dir", [["a", 1, 2, 3]], {}, {"a": "Z" * 32})
    write_record(tmp_path, "ds", damaged, now)
    assert read_record(tmp_path, "ds") == Record("abc.dir", [["a", 1, 2, 3]], {}, {})


def test_the_snapshot_through_folder_descriptors_is_each_full_paths_stat(tmp_path: Path) -> None:
    """Each folder is listed through its descriptor: every file's stat is still its own full
    path's, nested folders walked, a symlinked file read through, a symlinked folder left out
    (as DVC leaves it out), a name that is not UTF-8 kept."""
    data = tmp_path / "data"
    (data / "a" / "deep").mkdir(parents=True)
    (data / "a" / "deep" / "y").write_bytes(b"1")
    (data / "f.txt").write_bytes(b"22")
    (tmp_path / "target.bin").write_bytes(b"333")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "w").write_bytes(b"4444")
    os.symlink(tmp_path / "target.bin", data / "a" / "to-file")
    os.symlink(tmp_path / "out", data / "to-dir")
    odd = os.fsdecode(b"caf\xe9.bin")
    (data / odd).write_bytes(b"55555")
    now = snapshot(data)
    assert now is not None
    found = now.files
    assert [rel for rel, *_ in found] == ["a/deep/y", "a/to-file", odd, "f.txt"]
    for rel, ino, size, mtime in found:
        now = os.stat(data / rel)
        assert [ino, size, mtime] == [now.st_ino, now.st_size, now.st_mtime_ns]
