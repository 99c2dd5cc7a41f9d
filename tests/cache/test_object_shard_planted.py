"""A symlink to a folder outside the workspace planted as a shard of the cache's objects
(``.mlbuild/cache/objects/XX``, mlbuild/cache/objects.py): a run stores no object through it
but refuses it by name, as the action cache refuses a planted shard."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Workspace
from tests.graph.test_meta_planted import listing
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_a_symlinked_object_shard_is_refused_not_written_through(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "user.txt").write_text("the user's file\n")
    objects = ws.root / ".mlbuild" / "cache" / "objects"
    for shard in (f"{i:02x}" for i in range(256)):  # wherever the new output's object goes
        if not (objects / shard).exists():
            (objects / shard).symlink_to(outside)
    before = listing(outside)
    ws.recipe(RECIPE.replace("echo a > a.txt", "echo new > a.txt"))

    done = ws.cli("run", timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{objects}/" in done.stderr and f"is a symlink to {outside}" in done.stderr
    assert "remove it" in done.stderr and "Traceback" not in done.stderr
    assert listing(outside) == before
