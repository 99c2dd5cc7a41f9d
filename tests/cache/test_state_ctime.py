"""The state table never answers for a file (alone, or in a directory dep) rewritten in place
with its size kept and its mtime set back (``cp -p``, ``rsync -t --inplace``, ``touch -d``): the
stamp it trusts is the ctime, which every write sets to now and no user can set back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlbuild import racy
from mlbuild.cache import Cache
from tests.conftest import Workspace, rewrite_keeping_stat, write_tree

RECIPE = """\
schema_version: 1
name: demo
steps:
  shout:
    cmd: python -c "open('out.txt', 'w').write(open('in.txt').read().upper())"
    deps: [in.txt]
    outs: [out.txt]
"""


def old_enough() -> None:
    """Past the racy window, so the files just written are remembered by stat."""
    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)


def test_a_dep_rewritten_in_place_with_its_mtime_restored_runs_the_step(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"in.txt": "hello\n"})
    old_enough()
    assert ws.cli("run").returncode == 0
    assert ws.read("out.txt") == "HELLO\n"
    rewrite_keeping_stat(ws.root / "in.txt", "jello\n")
    plan = ws.cli("plan")
    assert "shout  run     dep in.txt changed (8e4c7c1b → 455d8603)" in plan.stdout
    assert ws.cli("run").returncode == 0
    assert ws.read("out.txt") == "JELLO\n"


def test_an_output_rewritten_in_place_with_its_mtime_restored_is_seen(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"in.txt": "hello\n"})
    assert ws.cli("run").returncode == 0
    old_enough()
    assert ws.cli("run").returncode == 0  # the output, now old enough, remembered by stat
    rewrite_keeping_stat(ws.root / "out.txt", "XXXXX\n")
    plan = ws.cli("plan")
    assert "shout  restore  out.txt was modified in the workspace" in plan.stdout, plan.stdout
    run = ws.cli("run")  # the edit is the user's: kept, and named, not overwritten
    assert run.returncode == 1
    assert "'out.txt' was changed since mlbuild wrote it" in run.stdout
    assert ws.read("out.txt") == "XXXXX\n"


@pytest.mark.parametrize("another_file_added", [False, True], ids=["listing memo", "file rows"])
def test_a_file_of_a_directory_rewritten_with_its_mtime_restored_changes_its_digest(
    tmp_path: Path, another_file_added: bool
) -> None:
    """The directory's listing memo (nothing else changed) and its files' rows (another file
    added, so the listing differs and each file's row is asked) both see the rewrite."""
    write_tree(tmp_path, {"data": {"a.txt": "aaaa", "b.txt": "bbbb"}})
    old_enough()
    cache = Cache.open(tmp_path, tmp_path / ".mlbuild")
    before = cache.hasher.digest("data")
    cache.state.save()
    rewrite_keeping_stat(tmp_path / "data" / "a.txt", "zzzz")
    if another_file_added:
        (tmp_path / "data" / "c.txt").write_text("cccc")
    after = Cache.open(tmp_path, tmp_path / ".mlbuild").hasher.digest("data")
    assert before is not None and before.manifest is not None
    assert after is not None and after.manifest is not None
    truth = Cache.open(tmp_path, tmp_path / "fresh").hasher.digest("data")  # every byte read
    assert truth is not None and after.value == truth.value != before.value
    digests = {e.relpath: e.digest for e in after.manifest}
    assert digests["a.txt"] != {e.relpath: e.digest for e in before.manifest}["a.txt"]
    assert digests["b.txt"] == {e.relpath: e.digest for e in before.manifest}["b.txt"]
