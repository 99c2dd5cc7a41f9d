"""`mlbuild run` end to end: real processes, real files, real cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses

PIPELINE = """\
schema_version: 1
name: demo
params:
  prep: {scale: 2}
  train: {lr: 0.1, epochs: 3}
steps:
  prepare:
    cmd: python prepare.py
    deps: [prepare.py, raw.txt]
    params: [prep.scale]
    outs: [data/]
  train:
    cmd: python train.py
    deps: [train.py, data/]
    params: ["train.*"]
    outs: [model.txt]
    metrics: [metrics.json]
  evaluate:
    cmd: [python, evaluate.py]
    deps: [evaluate.py, model.txt]
    outs: [report.txt]
"""

SCRIPTS = {
    "raw.txt": "1\n2\n3\n",
    "prepare.py": """
        import pathlib, mlbuild
        scale = mlbuild.params()["prep"]["scale"]
        nums = [int(x) * scale for x in open("raw.txt").read().split()]
        pathlib.Path("data").mkdir(exist_ok=True)
        pathlib.Path("data/nums.txt").write_text(" ".join(map(str, nums)))
        print("prepared", len(nums), "rows")
    """,
    "train.py": """
        import json, mlbuild
        p = mlbuild.params()
        nums = [int(x) for x in open("data/nums.txt").read().split()]
        open("model.txt", "w").write(f"w={sum(nums) * p['train']['lr']:.3f}")
        json.dump({"loss": 1 / (1 + p["train"]["lr"]), "epochs": p["train"]["epochs"]},
                  open("metrics.json", "w"))
    """,
    "evaluate.py": """
        open("report.txt", "w").write("report on " + open("model.txt").read())
    """,
}


@pytest.fixture
def pipeline(ws: Workspace) -> Workspace:
    return ws.recipe(PIPELINE).gen(SCRIPTS)


def test_first_run_runs_every_step_in_order_and_records_metrics(pipeline: Workspace) -> None:
    result = pipeline.run_json()
    assert statuses(result) == {"prepare": "ran", "train": "ran", "evaluate": "ran"}
    assert pipeline.read("report.txt") == "report on w=1.200"
    assert result["metrics"] == {"loss": pytest.approx(1 / 1.1), "epochs": 3}
    assert result["ok"] is True


def test_a_second_run_is_all_cached_and_reads_no_unchanged_file(pipeline: Workspace) -> None:
    pipeline.run_json()
    _age_files(pipeline.root)
    pipeline.run_json()  # learns the aged files' hashes into the state table
    result = pipeline.run_json()
    assert statuses(result) == {"prepare": "cached", "train": "cached", "evaluate": "cached"}
    assert result["hashing"]["bytes_hashed"] == 0
    assert result["hashing"]["files_from_state"] > 0


def test_changing_a_param_reruns_that_step_and_what_follows_not_what_precedes(
    pipeline: Workspace,
) -> None:
    pipeline.run_json()
    result = pipeline.run_json("train.lr=0.5")
    assert statuses(result) == {"prepare": "cached", "train": "ran", "evaluate": "ran"}
    train = result["steps"][1]
    assert train["reasons"] == ["param train.lr changed: 0.1 → 0.5"]
    assert pipeline.read("model.txt") == "w=6.000"


def test_an_upstream_step_that_reproduces_the_same_output_does_not_rerun_its_dependents(
    pipeline: Workspace,
) -> None:
    pipeline.run_json()
    (pipeline.root / "prepare.py").write_text(
        (pipeline.root / "prepare.py").read_text() + "\n# a comment changes nothing\n"
    )
    result = pipeline.run_json()
    assert statuses(result) == {"prepare": "ran", "train": "cached", "evaluate": "cached"}


def test_switching_back_to_earlier_params_restores_outputs_from_the_cache(
    pipeline: Workspace,
) -> None:
    pipeline.run_json()
    pipeline.run_json("train.lr=0.5")
    result = pipeline.run_json()
    assert statuses(result) == {"prepare": "cached", "train": "restored", "evaluate": "restored"}
    assert pipeline.read("model.txt") == "w=1.200"


def test_editing_a_restored_output_never_corrupts_the_cache(pipeline: Workspace) -> None:
    pipeline.run_json()
    pipeline.run_json("train.lr=0.5")
    pipeline.run_json()  # restores model.txt for lr=0.1
    with open(pipeline.root / "model.txt", "a") as handle:  # edit in place, as a user might
        handle.write(" tampered")
    refused = pipeline.cli("run", "train.lr=0.5")  # the edit is the user's: never overwritten
    assert refused.returncode == 1
    assert pipeline.read("model.txt") == "w=1.200 tampered"
    (pipeline.root / "model.txt").unlink()
    pipeline.run_json("train.lr=0.5")
    result = pipeline.run_json()
    assert statuses(result)["train"] == "restored"
    assert pipeline.read("model.txt") == "w=1.200"


def test_a_deleted_output_is_restored_without_running(pipeline: Workspace) -> None:
    pipeline.run_json()
    (pipeline.root / "report.txt").unlink()
    result = pipeline.run_json()
    assert statuses(result)["evaluate"] == "restored"
    assert result["steps"][2]["reasons"] == ["report.txt is missing"]
    assert pipeline.read("report.txt") == "report on w=1.200"


def test_force_runs_everything_again(pipeline: Workspace) -> None:
    pipeline.run_json()
    result = pipeline.run_json("--force")
    assert set(statuses(result).values()) == {"ran"}


def test_naming_a_step_runs_it_and_what_it_needs_only(pipeline: Workspace) -> None:
    result = pipeline.run_json("train")
    assert statuses(result) == {"prepare": "ran", "train": "ran"}
    assert not (pipeline.root / "report.txt").exists()


def test_dry_run_runs_nothing(pipeline: Workspace) -> None:
    done = pipeline.cli("run", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "prepare   run      never run in this workspace" in done.stdout
    assert not (pipeline.root / "data").exists()


def test_multirun_makes_one_cached_run_per_combination(pipeline: Workspace) -> None:
    done = pipeline.cli("run", "--json", "--multirun", "train.lr=0.1,0.2", "train.epochs=1,2")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)
    assert [r["overrides"] for r in runs] == [
        ["train.lr=0.1", "train.epochs=1"],
        ["train.lr=0.1", "train.epochs=2"],
        ["train.lr=0.2", "train.epochs=1"],
        ["train.lr=0.2", "train.epochs=2"],
    ]
    assert [statuses(r)["train"] for r in runs] == ["ran"] * 4
    again = pipeline.run_json("train.lr=0.1", "train.epochs=2")
    assert statuses(again)["train"] == "restored"


def test_a_step_sees_only_the_params_it_declares(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        params: {a: {x: 1, y: 2}, b: 3}
        steps:
          show:
            cmd: python -c "import json, mlbuild; print(json.dumps(mlbuild.params()))"
            params: [a.x]
        """
    )
    done = ws.cli("run")
    assert '[show] {"a": {"x": 1}}' in done.stdout


def test_a_param_that_could_change_a_string_command_is_refused(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        params: {msg: "hello; touch pwned"}
        steps:
          say:
            cmd: echo ${params.msg} > said.txt
            outs: [said.txt]
        """
    )
    done = ws.cli("run")
    assert done.returncode == 2
    assert "param 'msg' = \"hello; touch pwned\" cannot be pasted" in done.stderr
    assert not (ws.root / "pwned").exists()  # tests/params/test_shell.py has every context


def test_changing_a_dep_names_it_as_the_reason(pipeline: Workspace) -> None:
    pipeline.run_json()
    (pipeline.root / "raw.txt").write_text("4\n5\n")
    done = pipeline.cli("plan")
    assert done.returncode == 0
    assert "prepare   run      dep raw.txt changed (" in done.stdout
    assert "train     pending  runs after 'prepare', whose outputs may change" in done.stdout


def _age_files(root: Path) -> None:
    """Make every file older than the racy window, as files not touched for a while are: the
    state table trusts a file by its ctime, which only time moves past the window."""
    import time

    from mlbuild import racy

    time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)


def test_a_fresh_clone_sharing_the_cache_restores_instead_of_rerunning(
    make_ws: Callable[[str], Workspace], tmp_path: Path
) -> None:
    """No lock file is committed: a clone recomputes fingerprints and finds the outputs."""
    shared = {"MLBUILD_CACHE_DIR": str(tmp_path / "shared-cache")}
    laptop = make_ws("laptop").recipe(PIPELINE).gen(SCRIPTS)
    assert set(statuses(laptop.run_json(env=shared)).values()) == {"ran"}
    ci = make_ws("ci").recipe(PIPELINE).gen(SCRIPTS)
    result = ci.run_json(env=shared)
    assert statuses(result) == {"prepare": "restored", "train": "restored", "evaluate": "restored"}
    assert ci.read("report.txt") == laptop.read("report.txt")
    assert not list(ci.root.glob("*.lock")), "nothing to commit, nothing to conflict on"


def test_a_changed_directory_dep_names_the_files_that_changed(pipeline: Workspace) -> None:
    pipeline.run_json()
    (pipeline.root / "raw.txt").write_text("7\n8\n9\n")
    result = pipeline.run_json()
    train = result["steps"][1]
    assert train["status"] == "ran"
    assert train["reasons"][0].startswith("dep data changed (")
    assert train["reasons"][0].endswith("): 1 modified (nums.txt)")
