"""A symlink to a path outside the workspace planted as the cache lock
(``.mlbuild/cache/lock``, mlbuild/cache/lock.py): a run refuses it by name instead of creating
the file it points to."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Workspace
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_a_symlinked_cache_lock_is_refused_not_created_through(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    lock = ws.root / ".mlbuild" / "cache" / "lock"
    lock.unlink()
    outside = tmp_path / "made-by-nobody"
    lock.symlink_to(outside)
    (ws.root / "in.txt").write_text("2\n")

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{lock} is a symlink to {outside}" in done.stderr and "remove it" in done.stderr
    assert "Traceback" not in done.stderr
    assert not outside.exists()
