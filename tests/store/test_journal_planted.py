"""A FIFO planted as a run in the run journal, or a journal folder that is a symlink out of the
workspace (mlbuild/store/journal.py): `mlbuild runs list`, which moves the journal's runs into
the run store, neither waits on the FIFO for ever nor reads, moves or removes anything outside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.conftest import Workspace
from tests.graph.test_meta_planted import listing
from tests.graph.test_paths import git_repo
from tests.graph.test_same_data_planted import RECIPE


def test_a_fifo_in_the_journal_is_set_aside_not_waited_on(ws: Workspace) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    journal = ws.root / ".mlbuild" / "runs" / "journal"
    os.mkfifo(journal / f"{'0' * 32}.json")

    done = ws.cli("runs", "list", timeout=60)  # reading a FIFO with no writer waits for ever
    assert done.returncode == 0, done.stderr
    assert "not a regular file" in done.stderr and "finished" in done.stdout
    assert not (journal / f"{'0' * 32}.json").exists()


def test_a_journal_folder_that_is_a_symlink_out_is_refused_by_name(
    ws: Workspace, tmp_path: Path
) -> None:
    git_repo(ws.recipe(RECIPE).gen({"in.txt": "1\n"}))
    ws.run_json()
    journal = ws.root / ".mlbuild" / "runs" / "journal"
    outside = tmp_path / "outside"
    shutil.move(journal, outside)  # an unread run, and the user's files, there
    (outside / "notes.json").write_text("the user's, not a run\n")
    journal.symlink_to(outside)
    before = listing(outside)

    done = ws.cli("runs", "list", timeout=60)
    assert done.returncode == 1, done.stderr
    assert f"{journal} is a symlink to {outside}" in done.stderr, done.stderr
    assert listing(outside) == before  # nothing read in, moved aside or removed
