"""The cache in-process: hashing with the state table, objects, action entries."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.cache import ActionResult, Cache, CorruptObjectError, OutRecord
from mlbuild.errors import CacheError, DiskFullError
from tests.conftest import write_tree


def age(path: Path, seconds: float = 10) -> None:
    """Set the files' mtime back, then wait out the racy window: the state table trusts a file
    by its ctime, which setting the mtime makes now (mlbuild.cache.state)."""
    old = time.time() - seconds
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (old, old))
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.05)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache.open(tmp_path, tmp_path / ".mlbuild")


def fresh(cache: Cache) -> Cache:
    """The same cache as a new process would open it."""
    return Cache.open(cache.hasher.root, cache.state.db_path.parent)


def test_an_unchanged_file_is_not_read_again(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, {"data": {"a.bin": b"x" * 1000, "b.bin": b"y" * 10}})
    age(tmp_path / "data")
    first = cache.hasher.digest("data")
    cache.state.save()
    again = fresh(cache)
    assert again.hasher.digest("data") == first
    assert (again.hasher.stats.files_hashed, again.hasher.stats.files_from_state) == (0, 2)


def test_a_changed_file_is_read_again_even_with_the_same_size(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.txt": "aaaa"})
    age(tmp_path / "a.txt", 20)
    before = cache.hasher.digest("a.txt")
    cache.state.save()
    (tmp_path / "a.txt").write_text("bbbb")
    age(tmp_path / "a.txt", 5)
    after = fresh(cache).hasher.digest("a.txt")
    assert before is not None and after is not None and before.value != after.value


def test_a_just_written_file_is_not_trusted_from_the_state_table(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"a.txt": "new"})
    cache.hasher.digest("a.txt")
    cache.state.save()
    again = fresh(cache)
    again.hasher.digest("a.txt")
    assert again.hasher.stats.files_hashed == 1


def test_a_directory_hash_covers_names_contents_and_the_executable_bit(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"d": {"run.sh": "echo", "sub": {"x": "1"}, "__pycache__": {"c": "?"}}})
    base = cache.hasher.digest("d")
    assert base is not None and base.manifest is not None
    assert [e.relpath for e in base.manifest] == ["run.sh", "sub/x"]
    os.chmod(tmp_path / "d/run.sh", 0o755)
    assert cache.hasher.digest("d") != base
    (tmp_path / "d/__pycache__/c").write_text("changes nothing")
    os.chmod(tmp_path / "d/run.sh", 0o644)
    again = cache.hasher.digest("d")
    assert again is not None and again.value == base.value


def test_objects_are_read_only_and_restores_are_independent_copies(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"model.bin": b"weights"})
    digest = cache.hasher.digest("model.bin")
    assert digest is not None
    cache.objects.put(tmp_path / "model.bin", digest)
    obj = cache.objects.path_of(digest.value)
    assert stat.S_IMODE(obj.stat().st_mode) == 0o444
    cache.objects.restore(digest.value, tmp_path / "restored.bin")
    with open(tmp_path / "restored.bin", "ab") as handle:
        handle.write(b" edited")
    assert obj.read_bytes() == b"weights"
    assert os.stat(obj).st_ino != os.stat(tmp_path / "restored.bin").st_ino


def test_a_directory_round_trips_through_the_object_store(cache: Cache, tmp_path: Path) -> None:
    write_tree(tmp_path, {"out": {"a.txt": "a", "nested": {"b.txt": "b"}}})
    os.chmod(tmp_path / "out/a.txt", 0o755)
    digest = cache.hasher.digest("out")
    assert digest is not None
    cache.objects.put(tmp_path / "out", digest)
    cache.objects.restore(digest.value, tmp_path / "copy")
    assert (tmp_path / "copy/nested/b.txt").read_text() == "b"
    assert os.access(tmp_path / "copy/a.txt", os.X_OK)
    cache.objects.check(digest.value)  # every file listed is there, whole


def test_a_damaged_action_entry_is_a_miss_not_a_crash(cache: Cache) -> None:
    result = ActionResult("train", {"m.bin": OutRecord("ab" * 32, 3)}, {"acc": 0.9}, 1.5, 1.0)
    cache.actions.put("f" * 64, result)
    assert cache.actions.get("f" * 64) == result
    cache.actions.path_of("f" * 64).write_text("{truncated")
    assert cache.actions.get("f" * 64) is None


@pytest.mark.parametrize("key", ["duration", "created"])
def test_an_entry_with_a_time_past_a_floats_range_is_refused_not_a_crash(key: str) -> None:
    good = json.loads(ActionResult("s", {"ok.txt": OutRecord("ab" * 32, 3)}).to_json())
    hostile = json.dumps({**good, key: int("9" * 400)})
    with pytest.raises(ValueError, match=f"{key}: expected a number"):
        ActionResult.from_json(hostile)
    assert ActionResult.from_json(json.dumps({**good, key: 12})) == ActionResult(
        "s", {"ok.txt": OutRecord("ab" * 32, 3)}, **{key: 12.0}
    )


def test_parallel_steps_reading_one_directory_hash_it_once(cache: Cache, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    write_tree(tmp_path, {"data": {f"f{i}.bin": bytes([i]) * 4096 for i in range(50)}})
    age(tmp_path / "data")
    with ThreadPoolExecutor(4) as pool:
        digests = list(pool.map(lambda _: cache.hasher.digest("data"), range(4)))
    assert len({d.value for d in digests if d is not None}) == 1
    assert cache.hasher.stats.files_hashed == 50
    assert cache.hasher.stats.bytes_hashed == 50 * 4096


@pytest.mark.parametrize(
    "path",
    ["../x", "/etc/passwd", "a/../../x", "./a", "a//b", "a/", "", "a\\..\\x", "a\0b", ".", ".."],
)
def test_an_entry_whose_out_path_could_leave_the_workspace_is_refused(path: str) -> None:
    good = ActionResult("s", {"ok.txt": OutRecord("ab" * 32, 3)}).to_json()
    hostile = good.replace('"ok.txt"', json.dumps(path))
    with pytest.raises(ValueError, match="is not a relative path inside the workspace"):
        ActionResult.from_json(hostile)


@pytest.mark.parametrize("digest", ["../../x", "ab" * 32 + "/..", "AB" * 32, "ab" * 31, 7])
def test_a_malformed_digest_never_becomes_a_path(cache: Cache, digest: object) -> None:
    with pytest.raises(CacheError, match="malformed digest"):
        cache.objects.path_of(digest)  # type: ignore[arg-type]
    with pytest.raises(CacheError, match="malformed digest"):
        cache.actions.path_of(digest)  # type: ignore[arg-type]


def test_a_source_that_changes_while_it_is_stored_leaves_no_object(
    cache: Cache, tmp_path: Path
) -> None:
    write_tree(tmp_path, {"out.bin": b"first"})
    digest = cache.hasher.digest("out.bin")
    assert digest is not None
    (tmp_path / "out.bin").write_bytes(b"other")  # a process still writing its output
    with pytest.raises(CacheError, match=r"out\.bin changed while it was being stored"):
        cache.objects.put(tmp_path / "out.bin", digest)
    assert not cache.objects.has(digest.value)
    assert [p for p in cache.root.rglob("*") if p.is_file()] == []


def test_a_byte_flipped_deep_inside_a_big_object_is_found(cache: Cache, tmp_path: Path) -> None:
    data = os.urandom(20 << 20)
    write_tree(tmp_path, {"big.bin": data})
    digest = cache.hasher.digest("big.bin")
    assert digest is not None
    cache.objects.put(tmp_path / "big.bin", digest)
    cache.objects.restore(digest.value, tmp_path / "copy.bin", digest.size)
    assert (tmp_path / "copy.bin").read_bytes() == data
    with open(cache.objects.path_of(digest.value), "r+b") as handle:
        handle.seek(17 << 20)
        handle.write(bytes([data[17 << 20] ^ 1]))
    with pytest.raises(CorruptObjectError, match="does not match its digest"):
        cache.objects.restore(digest.value, tmp_path / "again.bin", digest.size)
    assert not (tmp_path / "again.bin").exists()


def test_a_full_disk_while_storing_a_big_object_names_the_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cache.test_atomic import small_disk

    write_tree(tmp_path, {"big.bin": os.urandom(20 << 20)})
    with small_disk(tmp_path / "disk", "4m") as disk:
        monkeypatch.setenv("MLBUILD_CACHE_DIR", str(disk))
        cache = Cache.open(tmp_path, tmp_path / ".mlbuild")
        digest = cache.hasher.digest("big.bin")
        assert digest is not None
        with pytest.raises(DiskFullError, match=r"20,971,520 bytes needed"):
            cache.objects.put(tmp_path / "big.bin", digest)
        assert [p for p in disk.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("url", "recorded"),
    [
        ("postgresql://ci:s3cret@db.example:5433/runs", "postgresql://ci@db.example:5433/runs"),
        ("postgresql://:s3cret@db/runs", "postgresql://db/runs"),
        ("postgresql://ci@db/runs", "postgresql://ci@db/runs"),
        ("sqlite:////repo/.mlbuild/runs.db", "sqlite:////repo/.mlbuild/runs.db"),
    ],
)
def test_a_workspace_registers_its_run_store_without_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, recorded: str
) -> None:
    from mlbuild.cache import registrations
    from mlbuild.graph import Workspace
    from mlbuild.runs.gc import register_workspace

    (tmp_path / "ml.yaml").write_text("schema_version: 1\nname: x\nsteps: {}\n")
    monkeypatch.setenv("MLBUILD_STORE", url)
    ws = Workspace.find(tmp_path)
    register_workspace(ws, None)
    [registration] = registrations(ws.cache.root)
    assert (registration.root, registration.store) == (tmp_path, recorded)
    assert "s3cret" not in registration.file.read_text()
