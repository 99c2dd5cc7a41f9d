"""A shard of the action cache (``.mlbuild/cache/actions/XX``) planted as a symlink to a folder
outside the workspace, another cache's for instance (mlbuild/cache/actions.py): `gc` removes no
entry there, and `plan` takes none of its entries for this workspace's results."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import Workspace
from tests.graph.test_meta_planted import listing
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_a_symlinked_action_shard_is_neither_pruned_nor_trusted(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    actions = ws.root / ".mlbuild" / "cache" / "actions"
    outside = tmp_path / "other-cache-actions"
    outside.mkdir()
    for shard in list(actions.iterdir()):
        shutil.move(shard, outside / shard.name)
        shard.symlink_to(outside / shard.name)
    before = listing(outside)
    assert len([k for k in before if k.endswith(".json")]) == 2

    done = ws.cli("plan", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "a     run      no cached result" in done.stdout, done.stdout  # none read through
    for record in (ws.root / ".mlbuild" / "steps").iterdir():
        record.unlink()  # so that no output of this workspace keeps the entries there
    done = ws.cli("gc", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert listing(outside) == before
