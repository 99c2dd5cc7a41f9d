"""A search worker's copy of the workspace: brought up to date with every edit of an input."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mlbuild.graph.workspace import Workspace
from mlbuild.search.workers import sync_copy
from tests.conftest import rewrite_keeping_stat

RECIPE = """\
schema_version: 1
name: copies
steps:
  train:
    cmd: python train.py
    deps: [train.py]
    outs: [model.txt]
"""


def _workspace(tmp: Path) -> tuple[Workspace, Path]:
    root = tmp / "ws"
    root.mkdir()
    (root / "ml.yaml").write_text(RECIPE)
    (root / "train.py").write_text("print('one')\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return Workspace.find(root), tmp / "copy"


def test_an_input_edited_with_its_size_kept_and_its_mtime_set_back_is_copied_again(
    tmp_path: Path,
) -> None:
    # `cp -p`, `rsync -t --inplace`, an editor that restores the mtime: the copy must not keep
    # running the old script
    ws, copy = _workspace(tmp_path)
    graph = ws.graph([])
    assert sync_copy(ws, graph, copy) >= 1
    assert (copy / "train.py").read_text() == "print('one')\n"
    source = tmp_path / "ws" / "train.py"
    before = source.stat()
    time.sleep(0.01)
    rewrite_keeping_stat(source, "print('two')\n")
    assert source.stat().st_size == before.st_size
    assert source.stat().st_mtime_ns == before.st_mtime_ns
    assert sync_copy(ws, graph, copy) == 1
    assert (copy / "train.py").read_text() == "print('two')\n"


def test_an_unchanged_workspace_copies_nothing_the_second_time(tmp_path: Path) -> None:
    ws, copy = _workspace(tmp_path)
    graph = ws.graph([])
    sync_copy(ws, graph, copy)
    assert sync_copy(ws, graph, copy) == 0


def test_a_manifest_of_the_older_shape_copies_each_file_once_more(tmp_path: Path) -> None:
    ws, copy = _workspace(tmp_path)
    graph = ws.graph([])
    sync_copy(ws, graph, copy)
    manifest = copy / ".mlbuild" / "search-copy.json"
    manifest.write_text('["ml.yaml", "train.py"]')
    assert sync_copy(ws, graph, copy) == 2
    assert sync_copy(ws, graph, copy) == 0


def test_a_damaged_manifest_copies_each_file_once_more(tmp_path: Path) -> None:
    ws, copy = _workspace(tmp_path)
    graph = ws.graph([])
    sync_copy(ws, graph, copy)
    manifest = copy / ".mlbuild" / "search-copy.json"
    for damaged in (b"\xff\xfe not json", b"42", b'{"train.py": "stamp"}', b""):
        manifest.write_bytes(damaged)
        assert sync_copy(ws, graph, copy) >= 1, damaged
        assert sync_copy(ws, graph, copy) == 0, damaged
