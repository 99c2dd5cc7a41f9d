"""`mlbuild runs get RUN PATH -o DEST` never deletes: like cp, an existing directory gets DEST/NAME,
an existing destination needs --force (which replaces only it), and a hostile artifact path in a
run record is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli.test_runs import demo
from tests.conftest import Workspace
from tests.graph.test_paths import snapshot


@pytest.fixture
def run_id(ws: Workspace) -> str:
    run: str = demo(ws).run_json("lr=0.2")["run_id"][:8]
    ws.run_json("lr=0.3")  # the workspace now holds another model
    return run


def get(ws: Workspace, *args: str) -> tuple[int, str, str]:
    done = ws.cli("runs", "get", *args)
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def test_dot_writes_the_artifact_into_the_current_directory_and_never_empties_it(
    ws: Workspace, run_id: str
) -> None:
    (ws.root / "out").mkdir()
    ws.gen({"out": {"keep.txt": "the user's file"}})
    done = ws.cli("-C", "out", "runs", "get", run_id, "model.txt", "-o", ".")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"restored model.txt of run {run_id} to model.txt\n"
    assert ws.read("out/model.txt") == "tree lr=0.2\n"
    assert ws.read("out/keep.txt") == "the user's file"


def test_dot_in_the_workspace_refuses_to_replace_an_output_without_force(
    ws: Workspace, run_id: str
) -> None:
    before = snapshot(ws.root)
    assert get(ws, run_id, "model.txt", "-o", ".") == (
        2,
        "",
        "mlbuild: model.txt exists (a file); pass --force to replace it, or choose another -o\n",
    )
    assert snapshot(ws.root) == before
    code, out, _ = get(ws, run_id, "model.txt", "-o", ".", "--force")
    assert (code, out) == (0, f"restored model.txt of run {run_id} to model.txt\n")
    assert ws.read("model.txt") == "tree lr=0.2\n"


def test_an_existing_file_is_replaced_only_with_force(ws: Workspace, run_id: str) -> None:
    ws.gen({"mine.txt": "precious"})
    assert get(ws, run_id, "model.txt", "-o", "mine.txt") == (
        2,
        "",
        "mlbuild: mine.txt exists (a file); pass --force to replace it, or choose another -o\n",
    )
    assert ws.read("mine.txt") == "precious"
    assert get(ws, run_id, "model.txt", "-o", "mine.txt", "--force")[0] == 0
    assert ws.read("mine.txt") == "tree lr=0.2\n"
    assert not [p for p in ws.root.iterdir() if p.name.startswith(".mlbuild-get-")]


def test_an_existing_directory_gets_the_artifact_inside_it_like_cp(
    ws: Workspace, run_id: str
) -> None:
    ws.gen({"exports": {"keep.txt": "sibling", "reports": {"old.txt": "old report"}}})
    assert get(ws, run_id, "model.txt", "-o", "exports")[:2] == (
        0,
        f"restored model.txt of run {run_id} to exports/model.txt\n",
    )
    assert ws.read("exports/model.txt") == "tree lr=0.2\n"
    code, _, err = get(ws, run_id, "reports", "-o", "exports")
    assert (code, err) == (
        2,
        "mlbuild: exports/reports exists (a directory); pass --force to replace it, or choose "
        "another -o\n",
    )
    assert ws.read("exports/reports/old.txt") == "old report"
    assert get(ws, run_id, "reports", "-o", "exports", "--force")[0] == 0
    assert sorted(p.name for p in (ws.root / "exports/reports").iterdir()) == ["summary.txt"]
    assert ws.read("exports/keep.txt") == "sibling"


def test_force_replaces_a_symlink_itself_never_what_it_points_to(
    ws: Workspace, run_id: str, tmp_path: Path
) -> None:
    (tmp_path / "target.txt").write_text("precious")
    (ws.root / "link.txt").symlink_to(tmp_path / "target.txt")
    assert get(ws, run_id, "model.txt", "-o", "link.txt")[0] == 2
    assert get(ws, run_id, "model.txt", "-o", "link.txt", "--force")[0] == 0
    assert not (ws.root / "link.txt").is_symlink()
    assert ws.read("link.txt") == "tree lr=0.2\n"
    assert (tmp_path / "target.txt").read_text() == "precious"


def test_git_mlbuild_and_the_recipe_are_never_destinations(ws: Workspace, run_id: str) -> None:
    (ws.root / ".git").mkdir()
    before = snapshot(ws.root)
    assert get(ws, run_id, "model.txt", "-o", ".git") == (
        2,
        "",
        "mlbuild: '.git/model.txt' is inside .git (git's own files); mlbuild never reads or "
        "writes there\n",
    )
    assert get(ws, run_id, "model.txt", "-o", "ml.yaml", "--force") == (
        2,
        "",
        "mlbuild: 'ml.yaml' is the recipe (ml.yaml); steps may read it, but mlbuild never "
        "writes or removes it\n",
    )
    assert get(ws, run_id, "model.txt", "-o", ".mlbuild/cache/x")[0] == 2
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("hostile", ["../victim.txt", "/tmp/mlbuild-victim.txt"])
def test_a_hostile_artifact_path_in_a_run_record_is_refused(
    ws: Workspace, run_id: str, hostile: str
) -> None:
    assert ws.cli("runs", "list").returncode == 0  # the journal is now in runs.db
    with sqlite3.connect(ws.root / ".mlbuild" / "runs.db") as db:
        db.execute("UPDATE run_artifacts SET path = ? WHERE path = 'model.txt'", (hostile,))
    before = snapshot(ws.root)
    code, _, err = get(ws, run_id, hostile, "-o", "x.txt")
    reason = "is outside the repository"
    assert (code, err) == (
        2,
        f"mlbuild: run {run_id} records the artifact '{hostile}' {reason}; mlbuild never records "
        "such a path, so the record was altered: refusing to restore it\n",
    )
    assert snapshot(ws.root) == before
    assert not Path("/tmp/mlbuild-victim.txt").exists()
    listed = get(ws, run_id, "model.tx", "-o", "x.txt")[2]
    assert listed.endswith("its artifacts: metrics.json, reports\n")  # never offered
    assert get(ws, run_id, "reports/summary.txt", "-o", "s.txt")[0] == 0  # the rest still works


def test_a_path_below_a_file_artifact_is_not_found_and_never_quarantines_it(
    ws: Workspace, run_id: str
) -> None:
    # a file object read as a directory's manifest would look damaged: it must not be touched
    assert get(ws, run_id, "model.txt/x", "-o", "x.txt") == (
        2,
        "",
        f"mlbuild: model.txt of run {run_id} holds no file x\n",
    )
    assert not (ws.root / ".mlbuild/cache/quarantine").exists()
    assert get(ws, run_id, "model.txt", "-o", "m.txt")[0] == 0
    assert ws.read("m.txt") == "tree lr=0.2\n"
