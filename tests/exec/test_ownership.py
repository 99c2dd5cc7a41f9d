"""At run time mlbuild removes or replaces an output only when it made it (the ledger), or when what
is there can be had back (from the cache, or from git), and re-checks every path at the last moment:
nothing of the user's is lost, nothing outside the repository is touched."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.exec.test_faults import wait_for
from tests.graph.test_paths import snapshot

RECIPE = """\
schema_version: 1
name: demo
params: {lr: 0.1}
steps:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [lr]
    outs: [model.pkl]
"""

# fails if the output it is about to write is still there: proves mlbuild removed it first
TRAIN = """\
import os, sys, time, mlbuild
assert not os.path.exists("model.pkl"), "model.pkl was not removed before the step ran"
with open("model.pkl", "w") as out:
    out.write("partial")
    out.flush()
    if os.path.exists("FAIL"):
        sys.exit(1)
    if os.path.exists("SLOW"):
        open("step.pid", "w").write(str(os.getpid()))
        time.sleep(60)
    out.write(f" model lr={mlbuild.params()['lr']}")
"""

NOT_OURS = (
    "mlbuild: step 'train' failed: 'model.pkl' exists and mlbuild did not create it; move it "
    "away or delete it, then run again\n"
)


def wait_for_text(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.read_text():
        assert time.monotonic() < deadline, f"{path} stayed empty"
        time.sleep(0.05)


@pytest.fixture
def train(ws: Workspace) -> Workspace:
    return ws.recipe(RECIPE).gen({"train.py": TRAIN})


def git(ws: Workspace, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=ws.root,
        check=True,
        capture_output=True,
    )


def test_a_users_file_at_an_output_path_is_kept_and_named(train: Workspace) -> None:
    train.gen({"model.pkl": "the user's own model"})
    done = train.cli("run")
    assert done.returncode == 1
    assert done.stderr == NOT_OURS
    assert train.read("model.pkl") == "the user's own model"
    (train.root / "model.pkl").rename(train.root / "mine.pkl")
    assert train.cli("run").returncode == 0
    assert train.read("model.pkl") == "partial model lr=0.1"
    assert train.read("mine.pkl") == "the user's own model"


def test_a_users_directory_at_an_output_path_is_kept(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          prepare: {cmd: "mkdir -p data && echo x > data/x.csv", outs: [data/]}
        """
    ).gen({"data": {"raw.csv": "the user's data\n"}})
    before = snapshot(ws.root)
    done = ws.cli("run")
    assert done.returncode == 1
    assert done.stderr == (
        "mlbuild: step 'prepare' failed: 'data' exists and mlbuild did not create it; move it "
        "away or delete it, then run again\n"
    )
    assert snapshot(ws.root) == before


def test_an_output_edited_since_mlbuild_wrote_it_is_kept(train: Workspace) -> None:
    train.run_json()
    with open(train.root / "model.pkl", "a") as handle:
        handle.write(" + the user's edit")
    done = train.cli("run", "lr=0.2")
    assert done.returncode == 1
    assert done.stderr == (
        "mlbuild: step 'train' failed: 'model.pkl' was changed since mlbuild wrote it, and the "
        "changed version is in no cache and not committed to git; move it away or delete it, "
        "then run again\n"
    )
    assert train.read("model.pkl") == "partial model lr=0.1 + the user's edit"


def test_outputs_mlbuild_made_are_replaced_when_inputs_change(train: Workspace) -> None:
    train.run_json()
    assert train.run_json("lr=0.2")["steps"][0]["status"] == "ran"
    assert train.run_json()["steps"][0]["status"] == "restored"
    assert train.read("model.pkl") == "partial model lr=0.1"


def test_a_failed_steps_partial_output_is_removed_on_the_next_run(train: Workspace) -> None:
    train.gen({"FAIL": ""})
    assert train.cli("run").returncode == 1
    assert train.read("model.pkl") == "partial"
    (train.root / "FAIL").unlink()
    result = train.run_json()
    assert result["steps"][0]["status"] == "ran"
    assert train.read("model.pkl") == "partial model lr=0.1"


def test_a_killed_steps_partial_output_is_removed_on_the_next_run(train: Workspace) -> None:
    """The claim is on disk before the step starts, so SIGKILL of mlbuild loses nothing: the
    same command, re-run, finds the partial output recorded as mlbuild's."""
    train.gen({"SLOW": ""})
    proc = train.start("run")
    try:
        wait_for(train.root / "step.pid")
        wait_for_text(train.root / "step.pid")
    finally:
        proc.kill()  # SIGKILL: mlbuild gets no chance to clean up
        proc.wait(timeout=10)
        pid_file = train.root / "step.pid"
        if pid_file.exists() and pid_file.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the orphaned step
    assert train.read("model.pkl") == "partial"
    (train.root / "SLOW").unlink()
    (train.root / "step.pid").unlink()
    result = train.run_json()
    assert result["steps"][0]["status"] == "ran"
    assert train.read("model.pkl") == "partial model lr=0.1"


def test_an_output_git_tracks_unmodified_is_replaced(train: Workspace) -> None:
    train.gen({"model.pkl": "committed model"})
    git(train, "init", "-q")
    git(train, "add", "-A")
    git(train, "commit", "-qm", "model")
    result = train.run_json()
    assert result["steps"][0]["status"] == "ran"
    assert train.read("model.pkl") == "partial model lr=0.1"


def test_an_output_git_tracks_with_uncommitted_changes_is_kept(train: Workspace) -> None:
    train.gen({"model.pkl": "committed model"})
    git(train, "init", "-q")
    git(train, "add", "-A")
    git(train, "commit", "-qm", "model")
    train.gen({"model.pkl": "committed model, edited"})
    done = train.cli("run")
    assert done.stderr == NOT_OURS
    assert train.read("model.pkl") == "committed model, edited"


def test_an_output_whose_bytes_are_in_the_cache_is_replaced_without_the_ledger(
    train: Workspace,
) -> None:
    train.run_json()
    (train.root / ".mlbuild" / "owned.json").unlink()  # e.g. made before the ledger existed
    assert train.run_json("lr=0.2")["steps"][0]["status"] == "ran"
    (train.root / ".mlbuild" / "owned.json").write_text("{not json")  # damaged: ignored
    assert train.run_json()["steps"][0]["status"] == "restored"


def test_a_symlink_made_by_an_earlier_step_is_refused_at_the_last_moment(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    ws.recipe(
        f"""\
        schema_version: 1
        name: demo
        steps:
          link: {{cmd: "ln -s {outside} sub && echo > a.txt", outs: [a.txt]}}
          write: {{cmd: "echo gone > sub/victim.txt", outs: [sub/victim.txt], needs: [link]}}
        """
    )
    assert ws.cli("validate").returncode == 0  # nothing is wrong until `link` has run
    done = ws.cli("run")
    assert done.returncode == 1
    assert done.stderr == (
        f"mlbuild: step 'write' failed: 'sub/victim.txt' resolves through the symlink 'sub' to "
        f"'{outside}/victim.txt', which is outside the repository ({ws.root}); use a path inside "
        "it, or replace the symlink with a real directory\n"
    )
    assert (outside / "victim.txt").read_text() == "precious"


def test_a_dep_an_earlier_step_turned_into_a_symlink_out_is_refused_before_it_is_read(
    ws: Workspace, tmp_path: Path
) -> None:
    # the steps' paths are fenced once before anything runs; a step's are checked again only
    # once another step has written to the tree, which must include this case
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    ws.gen({"sub/secret.txt": "ours"})
    ws.recipe(
        f"""\
        schema_version: 1
        name: demo
        steps:
          link: {{cmd: "rm -r sub && ln -s {outside} sub && echo > a.txt", outs: [a.txt]}}
          read: {{cmd: "cat sub/secret.txt > b.txt", deps: [sub/secret.txt], outs: [b.txt],
                  needs: [link]}}
        """
    )
    done = ws.cli("run")
    assert done.returncode == 1
    assert done.stderr == (
        f"mlbuild: step 'read' failed: 'sub/secret.txt' resolves through the symlink 'sub' to "
        f"'{outside}/secret.txt', which is outside the repository ({ws.root}); use a path inside "
        "it, or replace the symlink with a real directory\n"
    )
    assert not (ws.root / "b.txt").exists()


def test_a_restore_into_a_directory_that_became_a_symlink_writes_nothing_outside(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.txt").write_text("precious")
    recipe = """\
        schema_version: 1
        name: demo
        steps:
          first: {cmd: "CMD && echo > a.txt", outs: [a.txt]}
          model:
            cmd: "mkdir -p out && echo m > out/model.txt"
            outs: [out/model.txt]
            needs: [first]
        """
    ws.recipe(recipe.replace("CMD", "true"))
    ws.run_json()
    (ws.root / "out/model.txt").unlink()
    (ws.root / "out").rmdir()
    ws.recipe(recipe.replace("CMD", f"ln -s {outside} out"))  # `model` would be restored
    done = ws.cli("run")
    assert done.returncode == 1
    assert "mlbuild: step 'model' failed: 'out/model.txt' resolves through the symlink 'out'" in (
        done.stderr
    )
    assert (outside / "model.txt").read_text() == "precious"


def test_a_cached_result_naming_a_path_outside_the_step_is_never_used(
    train: Workspace, tmp_path: Path
) -> None:
    fingerprint = train.run_json()["steps"][0]["fingerprint"]
    entry = train.root / ".mlbuild/cache/actions" / fingerprint[:2] / f"{fingerprint}.json"
    result = json.loads(entry.read_text())
    result["outs"]["../victim.txt"] = result["outs"]["model.pkl"]
    entry.write_text(json.dumps(result))
    (tmp_path / "victim.txt").write_text("precious")
    (train.root / "model.pkl").unlink()
    done = train.cli("run")
    assert done.returncode == 0, done.stderr
    assert "train: running (no cached result for these inputs)" in done.stdout  # a miss
    assert (tmp_path / "victim.txt").read_text() == "precious"
    assert (train.root / "model.pkl").exists()  # made again by the step itself
