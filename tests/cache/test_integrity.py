"""Cache objects are verified whenever they are read: a damaged one is quarantined, never used.

Each test damages the cache the way a disk, a crash or a person can — a flipped byte, a truncated
object, an object replaced by a symlink or a directory — in a file object, a file inside a
directory object, and a directory's manifest, then runs the real CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cache.damage import (
    DAMAGES,
    cache_root,
    damage,
    entry_of,
    file_digest,
    is_intact,
    manifest_of,
    object_path,
    quarantined,
)
from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: trust
steps:
  make:
    cmd: python make.py
    deps: [make.py]
    outs: [model.bin, data/]
  use:
    cmd: python use.py
    deps: [use.py, model.bin, data/]
    outs: [report.txt]
"""
MAKE = """\
import pathlib
pathlib.Path("data/sub").mkdir(parents=True, exist_ok=True)
pathlib.Path("model.bin").write_bytes(b"weights " * 512)
pathlib.Path("data/a.txt").write_text("alpha " * 100)
pathlib.Path("data/sub/b.txt").write_text("beta " * 100)
with open("make.count", "a") as f:
    f.write("x")
"""
USE = """\
import pathlib
seen = [pathlib.Path(p).read_bytes() for p in ("model.bin", "data/a.txt", "data/sub/b.txt")]
pathlib.Path("report.txt").write_text(" ".join(str(len(s)) + ":" + s[:8].decode() for s in seen))
"""
GOOD_REPORT = "4096:weights  600:alpha al 500:beta bet"


@pytest.fixture
def built(ws: Workspace) -> Workspace:
    ws.recipe(RECIPE).gen({"make.py": MAKE, "use.py": USE})
    assert statuses(ws.run_json()) == {"make": "ran", "use": "ran"}
    return ws


def target_digest(ws: Workspace, target: str) -> tuple[str, str]:
    """(the workspace output that holds it, the digest of the object) for a damage target."""
    _, entry = entry_of(cache_root(ws), "make")
    data_digest = entry["outs"]["data"]["digest"]
    if target == "file":
        return "model.bin", entry["outs"]["model.bin"]["digest"]
    if target == "file in a directory":
        return "data", manifest_of(cache_root(ws), data_digest)["sub/b.txt"]
    assert target == "manifest"
    return "data", data_digest


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("target", ["file", "file in a directory", "manifest"])
def test_a_damaged_object_is_quarantined_and_the_step_runs_again(
    built: Workspace, target: str, how: str
) -> None:
    out, digest = target_digest(built, target)
    cache = cache_root(built)
    damage(object_path(cache, digest), how)
    shutil.rmtree(built.root / "data")
    (built.root / "model.bin").unlink()
    (built.root / "use.py").write_text(USE + "# changed: use must run, on what make restores\n")
    done = built.cli("run")
    assert done.returncode == 0, done.stderr
    assert f"make: running (cached output {out} was corrupt (quarantined))" in done.stdout
    assert "make: done" in done.stdout and "use: done" in done.stdout
    assert built.read("make.count") == "xx"
    assert built.read("report.txt") == GOOD_REPORT  # the downstream step read good bytes
    assert [name.split(".")[0] for name in quarantined(cache)] == [digest.split(".")[0]]
    assert object_path(cache, digest).is_file() and not object_path(cache, digest).is_symlink()
    assert is_intact(cache, digest) or target == "manifest"  # a manifest is named by its entries
    # the re-run stored good objects again: the next restore uses them
    (built.root / "model.bin").unlink()
    shutil.rmtree(built.root / "data")
    assert statuses(built.run_json()) == {"make": "restored", "use": "cached"}
    assert built.read("model.bin") == "weights " * 512
    assert built.read("data/sub/b.txt") == "beta " * 100


def test_plan_names_a_damaged_object_it_can_see_without_reading_it(built: Workspace) -> None:
    out, digest = target_digest(built, "file")
    damage(object_path(cache_root(built), digest), "truncate")
    (built.root / out).unlink()
    done = built.cli("plan")
    assert done.returncode == 0, done.stderr
    assert "make  run      cached output model.bin was corrupt (quarantined)" in done.stdout


def test_a_flipped_byte_is_found_by_the_restore_which_says_what_it_found(built: Workspace) -> None:
    _, digest = target_digest(built, "file")
    cache = cache_root(built)
    damage(object_path(cache, digest), "flip")
    (built.root / "model.bin").unlink()
    assert "make  restore" in built.cli("plan").stdout  # only reading the bytes can tell
    done = built.cli("run")
    assert done.returncode == 0, done.stderr
    moved = cache / "quarantine" / quarantined(cache)[0]
    assert (
        f"make: cannot restore model.bin: cache object {digest} does not match its digest "
        f"(altered); moved to {moved}\n"
        "make: running (cached output model.bin was corrupt (quarantined))\n"
    ) in done.stdout
    assert built.read("model.bin") == "weights " * 512


@pytest.mark.parametrize("rerun", ["--force", "an edit that changes nothing it writes"])
def test_a_re_run_that_makes_the_same_bytes_repairs_a_damaged_object(
    built: Workspace, rerun: str
) -> None:
    _, digest = target_digest(built, "file")
    cache = cache_root(built)
    damage(object_path(cache, digest), "flip")
    if rerun == "--force":
        result = built.run_json("--force", "make")
    else:
        (built.root / "make.py").write_text(MAKE + "# a comment\n")
        result = built.run_json("make")
    assert statuses(result) == {"make": "ran"}
    assert is_intact(cache, digest)
    assert len(quarantined(cache)) == 1
    (built.root / "model.bin").unlink()
    assert statuses(built.run_json("make")) == {"make": "restored"}


def test_a_no_op_run_reads_nothing_from_the_cache(built: Workspace) -> None:
    """Every object damaged, outputs intact: nothing is read, so nothing is found or moved."""
    cache = cache_root(built)
    for obj in (cache / "objects").glob("*/*"):
        damage(obj, "flip")
    assert statuses(built.run_json()) == {"make": "cached", "use": "cached"}
    assert quarantined(cache) == []


@pytest.mark.parametrize("how", DAMAGES)
def test_runs_get_of_a_damaged_artifact_writes_nothing_and_says_how_to_remake_it(
    built: Workspace, how: str
) -> None:
    run_id = json.loads(built.cli("runs", "list", "--json").stdout)[0]["id"][:8]
    _, digest = target_digest(built, "file in a directory")
    cache = cache_root(built)
    damage(object_path(cache, digest), how)
    done = built.cli("runs", "get", run_id, "data/sub/b.txt", "-o", "b.txt")
    assert done.returncode == 1
    assert not (built.root / "b.txt").exists()
    moved = cache / "quarantine" / quarantined(cache)[0]
    problem = {
        "flip": "does not match its digest (altered)",
        "truncate": "is 250 bytes, expected 500 (truncated or altered)",
        "symlink": "is a symbolic link",
        "directory": "is a directory",
    }[how]
    where = "data/sub/b.txt" if how == "flip" else "data"
    assert done.stderr == (
        f"mlbuild: artifact {where} of run {run_id} is corrupt in the cache (cache object "
        f"{digest} {problem}; moved to {moved}); nothing was written; make it again with "
        f"`mlbuild runs reproduce {run_id}`\n"
    )
    assert [p.name for p in built.root.iterdir() if ".tmp" in p.name] == []


def test_runs_get_never_turns_a_recorded_digest_into_a_path(built: Workspace) -> None:
    """A run record (here, its journal file) naming ``../../x`` as a digest is refused."""
    journal = next((built.root / ".mlbuild/runs/journal").glob("*.json"))
    record = json.loads(journal.read_text())
    for artifact in record["artifacts"]:
        artifact["digest"] = "../../../../escape"
    journal.write_text(json.dumps(record))
    done = built.cli("runs", "get", record["id"][:8], "model.bin", "-o", "m.bin")
    assert (done.returncode, done.stderr) == (
        1,
        "mlbuild: malformed digest '../../../../escape' in the cache (expected 64 hex digits, "
        "optionally followed by .dir); the entry that holds it is damaged\n",
    )
    assert not (built.root / "m.bin").exists()


def test_objects_and_restored_files_carry_no_temporary_leftovers(built: Workspace) -> None:
    (built.root / "model.bin").unlink()
    shutil.rmtree(built.root / "data")
    assert statuses(built.run_json()) == {"make": "restored", "use": "cached"}
    names = [p.name for p in built.root.rglob("*")]
    assert [n for n in names if n.endswith(".tmp")] == []
    assert file_digest(built.root / "model.bin") == target_digest(built, "file")[1]


def test_a_quarantine_planted_as_a_symlink_out_is_refused_and_nothing_is_moved_there(
    built: Workspace, tmp_path: Path
) -> None:
    _, digest = target_digest(built, "file")
    cache = cache_root(built)
    damage(object_path(cache, digest), "flip")
    (built.root / "model.bin").unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(cache / "quarantine", ignore_errors=True)
    (cache / "quarantine").symlink_to(outside)
    done = built.cli("run")
    assert done.returncode == 1, done.stderr
    assert f"{cache / 'quarantine'} is a symlink to {outside}, not what mlbuild keeps" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
    assert list(outside.iterdir()) == []  # the damaged object was not moved out
    assert object_path(cache, digest).is_file()
    (cache / "quarantine").unlink()  # the plant removed, the next run quarantines as usual
    assert statuses(built.run_json())["make"] == "ran"
    assert [name.split(".")[0] for name in quarantined(cache)] == [digest.split(".")[0]]
