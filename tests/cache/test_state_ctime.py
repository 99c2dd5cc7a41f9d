"""The state table never answers for a file rewritten in place with its size kept and its mtime
set back (``cp -p``, ``rsync -t --inplace``, ``touch -d``): the stamp it trusts is the ctime, which
every write sets to now and no user can set back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mlbuild import racy
from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: demo
steps:
  shout:
    cmd: python -c "open('out.txt', 'w').write(open('in.txt').read().upper())"
    deps: [in.txt]
    outs: [out.txt]
"""


def rewrite_keeping_stat(path: Path, text: str) -> None:
    """New content of the same size in the same inode, the mtime put back as it was."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with open(path, "r+", encoding="utf-8") as handle:
        handle.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


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
