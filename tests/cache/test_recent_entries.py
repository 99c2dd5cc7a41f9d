"""The batch of entries a workspace used last (``.mlbuild/entries.db``) never answers stale.

It answers only for an entry file that is exactly the one its text was read from: rewritten in
place (same size, mtime set back), replaced, removed, turned into a symlink, or a table damaged,
and the file itself is read again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.cache.actions import ActionCache, ActionResult, OutRecord
from mlbuild.cache.recent import RecentEntries
from tests.cache.damage import cache_root, entry_of
from tests.conftest import Workspace, rewrite_keeping_stat, statuses

FP = "ab" * 32
GOOD = ActionResult("make", {"out.txt": OutRecord("1" * 64, 10)}, duration=1.0, created=2.0)
OTHER = ActionResult("make", {"out.txt": OutRecord("2" * 64, 10)}, duration=1.0, created=2.0)


@pytest.fixture(autouse=True)
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as old enough to remember (else a test would wait a second each)."""
    monkeypatch.setattr(racy, "cutoff", lambda: time.time_ns() + 10**12)


def command(tmp_path: Path) -> ActionCache:
    """The action cache as one mlbuild command opens it."""
    return ActionCache(tmp_path / "cache" / "actions", RecentEntries(tmp_path / "entries.db"))


def remembered(tmp_path: Path) -> ActionCache:
    """A command that read the entry and saved the batch, then the next command's cache."""
    first = command(tmp_path)
    first.put(FP, GOOD)
    assert first.get(FP) == GOOD
    assert first.recent is not None
    first.recent.save()
    second = command(tmp_path)
    assert second.recent is not None
    found = second.recent.lookup(str(second.path_of(FP)))
    assert found is not None and found[1] is not None  # else the tests below prove nothing
    return second


def test_an_unchanged_entry_is_answered_from_the_batch(tmp_path: Path) -> None:
    assert remembered(tmp_path).get(FP) == GOOD


def test_an_entry_rewritten_in_place_with_its_size_and_mtime_is_read_again(
    tmp_path: Path,
) -> None:
    actions = remembered(tmp_path)
    path = actions.path_of(FP)
    rewrite_keeping_stat(path, OTHER.to_json())  # same inode, size and mtime
    assert actions.get(FP) == OTHER


def test_a_replaced_entry_is_read_again(tmp_path: Path) -> None:
    actions = remembered(tmp_path)
    actions.put(FP, OTHER)  # --force on a step whose outputs differ run to run
    assert actions.get(FP) == OTHER


def test_a_removed_entry_is_a_miss(tmp_path: Path) -> None:
    actions = remembered(tmp_path)
    actions.path_of(FP).unlink()  # gc
    assert actions.get(FP) is None


def test_an_entry_turned_into_a_symlink_is_not_answered(tmp_path: Path) -> None:
    actions = remembered(tmp_path)
    path = actions.path_of(FP)
    good = tmp_path / "elsewhere.json"
    good.write_text(GOOD.to_json())
    path.unlink()
    path.symlink_to(good)
    assert actions.get(FP) is None  # a symlink is never an entry: quarantined, a miss
    assert not path.is_symlink()


@pytest.mark.parametrize(
    "damage", [b"", b"not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 200]
)
def test_a_damaged_batch_is_ignored(tmp_path: Path, damage: bytes) -> None:
    first = command(tmp_path)
    first.put(FP, GOOD)
    (tmp_path / "entries.db").write_bytes(damage)
    second = command(tmp_path)
    assert second.get(FP) == GOOD
    assert second.recent is not None
    second.recent.save()  # does not raise either; a table that is no database is removed
    third = command(tmp_path)
    assert third.get(FP) == GOOD
    assert third.recent is not None
    third.recent.save()
    fourth = command(tmp_path)
    assert fourth.recent is not None
    found = fourth.recent.lookup(str(fourth.path_of(FP)))
    assert found is not None and found[1] is not None  # the batch works again


def test_a_planted_row_that_fails_the_schema_is_a_miss(tmp_path: Path) -> None:
    """The batch's text is checked as the file's is: a row planted for the file's exact stat
    (anyone who can write .mlbuild can) is refused and the entry quarantined."""
    actions = remembered(tmp_path)
    assert actions.recent is not None
    path = str(actions.path_of(FP))
    found = actions.recent.lookup(path)
    assert found is not None
    bad = json.loads(GOOD.to_json())
    bad["outs"] = {"../escape.txt": bad["outs"]["out.txt"]}
    actions.recent.remember(path, found[0], json.dumps(bad))
    assert actions.get(FP) is None
    assert not actions.path_of(FP).exists()


def test_an_entry_is_touched_when_its_last_use_is_old_only(tmp_path: Path) -> None:
    """``gc --keep-days`` keeps what is used: an entry marked used days ago is marked now; one
    marked within the hour is left as it is (a touch would make the batch read it again)."""
    actions = remembered(tmp_path)
    path = actions.path_of(FP)
    old = time.time_ns() - 10 * 86400 * 10**9
    os.utime(path, ns=(old, old))
    fresh = command(tmp_path)
    assert fresh.get(FP) == GOOD
    fresh.touch(FP)
    touched = path.stat().st_mtime_ns
    assert touched > old + 9 * 86400 * 10**9
    again = command(tmp_path)
    assert again.get(FP) == GOOD
    again.touch(FP)
    assert path.stat().st_mtime_ns == touched


def test_a_no_op_run_answers_from_the_batch_and_an_entry_edited_in_place_is_read_again(
    ws: Workspace,
) -> None:
    """Through the CLI: the batch is saved by a run, used by the next, and an entry rewritten
    in place to name other output bytes (size and mtime restored) is not taken as cached."""
    ws.recipe(
        "schema_version: 1\nname: e\nsteps:\n  make:\n    cmd: python make.py\n"
        "    deps: [make.py]\n    outs: [out.txt]\n"
    ).gen({"make.py": 'open("out.txt", "w").write("good bytes")\n'})
    assert statuses(ws.run_json()) == {"make": "ran"}
    time.sleep(1.1)  # past the racy window: the entry file may be remembered now
    assert statuses(ws.run_json()) == {"make": "cached"}
    assert (ws.root / ".mlbuild" / "entries.db").is_file()
    path, entry = entry_of(cache_root(ws), "make")
    before = path.stat()
    record = entry["outs"]["out.txt"]
    record["digest"] = "0" * len(record["digest"])  # not the bytes in the workspace
    text = json.dumps(entry, sort_keys=True)
    assert len(text) == before.st_size
    rewrite_keeping_stat(path, text)
    result = ws.run_json()
    assert statuses(result) == {"make": "ran"}  # the object 000… is not in the cache
    assert ws.read("out.txt") == "good bytes"
