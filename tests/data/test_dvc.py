"""DVC-tracked and imported data as step inputs, with a real DVC repo and a local remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Workspace, statuses

pytestmark = pytest.mark.slow


def sh(cwd: Path, *argv: str) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def dvc(cwd: Path, *args: str) -> None:
    """A DVC command, run in-process through DVC's own CLI entry point (as `dvc ARGS` would)."""
    from dvc.cli import main as dvc_main

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        assert dvc_main(list(args)) == 0, f"dvc {' '.join(args)} failed"
    finally:
        os.chdir(previous)


def git_dvc_repo(root: Path, remote: Path) -> None:
    sh(root, "git", "init", "-q")
    sh(root, "git", "config", "user.email", "t@example.com")
    sh(root, "git", "config", "user.name", "t")
    dvc(root, "init", "-q")
    remote.mkdir(parents=True, exist_ok=True)
    dvc(root, "remote", "add", "-d", "storage", str(remote))


RECIPE = """\
schema_version: 1
name: demo
data:
  rows: {path: data/rows.csv}
  images: {path: data/images, remote: storage}
steps:
  count:
    cmd: wc -l < data/rows.csv > count.txt
    deps: [data:rows]
    outs: [count.txt]
  sizes:
    cmd: ls data/images > listing.txt
    deps: [data/images]
    outs: [listing.txt]
  report:
    cmd: cat count.txt listing.txt > report.txt
    deps: [count.txt, listing.txt]
    outs: [report.txt]
"""


@pytest.fixture
def repo(ws: Workspace, tmp_path: Path) -> Workspace:
    """A git+DVC repo whose data is pushed to a local remote and then removed from the
    workspace and the DVC cache: only the remote has it."""
    git_dvc_repo(ws.root, tmp_path / "remote")
    ws.gen({"data": {"rows.csv": "a\nb\nc\n", "images": {"1.png": "one", "2.png": "two"}}})
    dvc(ws.root, "add", "-q", "data/rows.csv", "data/images")
    dvc(ws.root, "push", "-q")
    ws.recipe(RECIPE)
    sh(ws.root, "git", "add", "-A")
    sh(ws.root, "git", "commit", "-qm", "data")
    remove_data(ws)
    shutil.rmtree(ws.root / ".dvc" / "cache")
    return ws


def remove_data(ws: Workspace) -> None:
    """Delete the data from the workspace, keeping the .dvc files (as a fresh clone has)."""
    (ws.root / "data/rows.csv").unlink()
    shutil.rmtree(ws.root / "data/images")


def md5_in(dvc_file: Path) -> str:
    return dvc_file.read_text().split("md5: ")[1].split()[0]


def test_missing_data_is_fetched_from_the_remote_and_its_version_recorded(repo: Workspace) -> None:
    done = repo.cli("run", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert statuses(result) == {"count": "ran", "sizes": "ran", "report": "ran"}
    assert "count: fetching dataset 'rows' (data/rows.csv) through DVC" in done.stderr
    assert repo.read("count.txt").strip() == "3"
    versions = {v["name"]: v for v in result["data"]}
    assert versions["rows"]["kind"] == "dvc"
    assert versions["rows"]["hash"] == md5_in(repo.root / "data/rows.csv.dvc")
    assert versions["rows"]["tracked_in"] == "data/rows.csv.dvc"
    assert versions["images"]["hash"].endswith(".dir")
    assert versions["images"]["remote"] == "storage"


def test_a_no_op_run_over_dvc_data_does_not_import_dvc(repo: Workspace) -> None:
    repo.run_json()
    probe = (
        "import sys\n"
        "from mlbuild.cli.main import main\n"
        "code = main(['run', '-q'])\n"
        "print(code, 'dvc' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    assert repo.cli_python(probe).stdout.strip().splitlines()[-1] == "0 False False"


def test_a_cached_step_needs_no_data_in_the_workspace(repo: Workspace) -> None:
    repo.run_json()
    remove_data(repo)
    result = repo.run_json()
    assert set(statuses(result).values()) == {"cached"}
    assert not (repo.root / "data/rows.csv").exists(), "nothing was fetched for cached steps"


def test_new_data_reruns_exactly_the_steps_that_read_it_and_plan_names_it(
    repo: Workspace,
) -> None:
    repo.run_json()
    old = md5_in(repo.root / "data/rows.csv.dvc")
    (repo.root / "data/rows.csv").write_text("a\nb\nc\nd\n")
    dvc(repo.root, "add", "-q", "data/rows.csv")
    new = md5_in(repo.root / "data/rows.csv.dvc")
    plan = repo.cli("plan")
    assert f"count   run      dataset rows changed ({old[:8]} → {new[:8]})" in plan.stdout
    result = repo.run_json()
    assert statuses(result) == {"count": "ran", "sizes": "cached", "report": "ran"}
    status = json.loads(repo.cli("data", "status", "--json").stdout)
    assert {s["name"]: s["state"] for s in status} == {"rows": "unchanged", "images": "unchanged"}


def test_data_status_names_the_changed_dataset_and_files(repo: Workspace) -> None:
    repo.run_json()
    (repo.root / "data/images/3.png").write_text("three")
    (repo.root / "data/images/1.png").write_text("ONE")
    dvc(repo.root, "add", "-q", "data/images")
    done = repo.cli("data", "status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["DATASET", "PATH", "KIND", "VERSION", "LAST", "RUN", "STATE"]
    assert lines[1].split()[-1] == "unchanged"
    assert lines[2].split()[-1] == "changed"
    assert lines[4:] == [
        "images: 2 files changed since the last run",
        "  + 3.png",
        "  ~ 1.png",
    ]


def test_a_workspace_copy_that_differs_from_its_dvc_file_is_an_error_with_the_fix(
    repo: Workspace,
) -> None:
    repo.run_json()
    (repo.root / "data/rows.csv").write_text("edited by hand\n")
    done = repo.cli("run")
    assert done.returncode == 1
    assert done.stderr.startswith(
        "mlbuild: step 'count' failed: dataset 'rows': data/rows.csv differs from the version in "
        "data/rows.csv.dvc (md5 "
    )
    assert "recorded as run" in done.stdout  # the run is summed up and recorded all the same
    assert (
        "record the new data with `dvc add data/rows.csv`, or restore the recorded version "
        "with `dvc checkout data/rows.csv`" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_data_missing_from_the_remote_is_an_error_naming_dataset_and_remote(
    repo: Workspace, tmp_path: Path
) -> None:
    shutil.rmtree(tmp_path / "remote")
    (tmp_path / "remote").mkdir()
    done = repo.cli("run", "count")
    assert done.returncode == 1
    assert "dataset 'rows': data/rows.csv (md5 " in done.stderr
    assert "is neither in the local DVC cache nor on the default DVC remote" in done.stderr
    assert not (repo.root / "count.txt").exists()


def test_an_unknown_remote_is_named(repo: Workspace) -> None:
    repo.recipe(RECIPE.replace("remote: storage", "remote: nowhere"))
    done = repo.cli("run", "sizes")
    assert done.returncode == 1
    assert "dataset 'images': DVC has no remote named 'nowhere'" in done.stderr


def test_a_malformed_dvc_file_is_named(repo: Workspace) -> None:
    (repo.root / "data/rows.csv.dvc").write_text("outs: [unclosed\n")
    done = repo.cli("run", "count")
    assert done.returncode == 1
    assert done.stderr.startswith("mlbuild: step 'count' failed: data/rows.csv.dvc is malformed (")
    assert "recorded as run" in done.stdout


def test_dvc_true_without_a_dvc_repository_says_how_to_fix_it(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          rows: {path: rows.csv, dvc: true}
        steps:
          count: {cmd: wc -l rows.csv, deps: [data:rows]}
        """
    ).gen({"rows.csv": "a\n"})
    for command in ("validate", "run"):  # found before anything runs, located in the recipe
        done = ws.cli(command)
        assert done.returncode == 2
        assert done.stderr.splitlines()[0] == (
            "mlbuild: ml.yaml:4:31: data.rows.dvc: dataset 'rows' (rows.csv) is declared "
            "`dvc: true` but DVC does not track it: no DVC repository here (run `dvc init`); "
            "track it with `dvc add rows.csv`"
        )


def test_a_plain_dataset_is_hashed_by_mlbuild(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          rows: {path: rows.csv}
        steps:
          count: {cmd: wc -l < rows.csv > n.txt, deps: [data:rows], outs: [n.txt]}
        """
    ).gen({"rows.csv": "a\n"})
    first = ws.run_json()
    assert first["data"][0]["kind"] == "file"
    ws.gen({"rows.csv": "a\nb\n"})
    again = ws.run_json()
    assert again["steps"][0]["reasons"][0].startswith("dataset rows changed (")


def test_an_unknown_dataset_in_deps_is_a_recipe_error(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          rows: {path: rows.csv}
        steps:
          count: {cmd: "true", deps: ["data:row"]}
        """
    )
    done = ws.cli("validate")
    assert done.returncode == 2
    assert done.stderr.startswith(
        "mlbuild: ml.yaml:6:31: steps.count.deps[0]: no dataset named 'row' (did you mean 'rows'?)"
    )


# a step reading a dataset DVC imports from the registry at ``{repo}``
IMPORTER = """\
schema_version: 1
name: app
data:
  iris:
    path: data/iris.csv
    import: {{repo: "{repo}", rev: v1, path: sets/iris.csv}}
steps:
  count: {{cmd: wc -l < data/iris.csv > n.txt, deps: [data:iris], outs: [n.txt]}}
"""


def registry_version(registry: Workspace, iris: str, tag: str, *, push: bool = True) -> None:
    """Commit ``sets/iris.csv`` holding ``iris`` to the DVC registry, tagged ``tag``."""
    registry.gen({"sets": {"iris.csv": iris}})
    dvc(registry.root, "add", "-q", "sets/iris.csv")
    if push:
        dvc(registry.root, "push", "-q")
    sh(registry.root, "git", "add", "-A")
    sh(registry.root, "git", "commit", "-qm", tag)
    sh(registry.root, "git", "tag", tag)


def test_an_import_from_another_repo_at_a_tag(make_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = make_ws("registry")
    git_dvc_repo(registry.root, tmp_path / "registry-remote")
    registry_version(registry, "x,y\n1,2\n", "v1")
    v1_commit = sh(registry.root, "git", "rev-parse", "HEAD").strip()
    registry_version(registry, "x,y\n1,2\n3,4\n", "v2")

    app = make_ws("app")
    recipe = IMPORTER.format(repo="../registry")
    app.recipe(recipe)
    first = app.run_json()
    assert app.read("n.txt").strip() == "2"
    version = first["data"][0]
    assert (version["kind"], version["repo"], version["rev"], version["commit"]) == (
        "import",
        "../registry",
        "v1",
        v1_commit,
    )
    assert statuses(app.run_json()) == {"count": "cached"}
    app.recipe(recipe.replace("rev: v1", "rev: v2"))
    moved = app.run_json()
    assert statuses(moved) == {"count": "ran"}
    assert moved["steps"][0]["reasons"][0].startswith("dataset iris changed (")
    assert app.read("n.txt").strip() == "3"


def test_outputs_marked_dvc_are_added_to_dvc_and_pushed(ws: Workspace, tmp_path: Path) -> None:
    git_dvc_repo(ws.root, tmp_path / "remote")
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        steps:
          train:
            cmd: echo weights > model.bin
            outs: [{path: model.bin, dvc: true}]
        """
    )
    ws.run_json()
    assert (ws.root / "model.bin.dvc").is_file()
    digest = md5_in(ws.root / "model.bin.dvc")
    done = ws.cli("push")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "pushed 1 file(s) to the default DVC remote: model.bin\n"
    assert (tmp_path / "remote/files/md5" / digest[:2] / digest[2:]).is_file()


def test_an_import_whose_source_is_unreachable_says_so(make_ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    registry = make_ws("registry")
    git_dvc_repo(registry.root, tmp_path / "registry-remote")
    registry.gen({"sets": {"iris.csv": "x,y\n1,2\n"}})
    dvc(registry.root, "add", "-q", "sets/iris.csv")
    sh(registry.root, "git", "add", "-A")
    sh(registry.root, "git", "commit", "-qm", "v1")
    app = make_ws("app")
    app.recipe(
        """\
        schema_version: 1
        name: app
        data:
          gone: {path: a.csv, import: {repo: ../no-such-registry, path: sets/iris.csv}}
          down: {path: b.csv, import: {repo: "https://127.0.0.1:9/org/registry.git", path: x}}
          norev: {path: c.csv, import: {repo: ../registry, rev: v9, path: sets/iris.csv}}
          unpushed: {path: d.csv, import: {repo: ../registry, path: sets/iris.csv}}
        steps:
          gone: {cmd: "true", deps: [data:gone]}
          down: {cmd: "true", deps: [data:down]}
          norev: {cmd: "true", deps: [data:norev]}
          unpushed: {cmd: "true", deps: [data:unpushed]}
        """
    )
    fix = (
        "check `import.repo` (a git URL, or a path relative to the recipe), the network and "
        "your git credentials"
    )
    messages = {
        "gone": "mlbuild: dataset 'gone': the source repository ../no-such-registry is "
        f"unreachable (No git repository was found at ../no-such-registry); {fix}\n",
        "down": "mlbuild: dataset 'down': the source repository "
        "https://127.0.0.1:9/org/registry.git is unreachable ([Errno 111] Connection refused); "
        f"{fix}\n",
        "norev": "mlbuild: dataset 'norev': ../registry has no revision 'v9'; fix `import.rev` "
        "(a tag, branch or commit of that repository)\n",
    }
    for step, message in messages.items():
        done = app.cli("plan", step)
        assert (done.returncode, done.stderr) == (1, message), step
    # reachable, but the data was never pushed to the registry's remote (nor is in its cache)
    shutil.rmtree(registry.root / ".dvc" / "cache")
    done = app.cli("run", "unpushed")
    assert done.returncode == 1
    assert done.stderr.endswith(
        "failed: [Errno 2] No storage files available: 'sets/iris.csv'; if its data is not on "
        "that repository's DVC remote, run `dvc push` there\n"
    )
    assert "Traceback" not in done.stderr


def test_a_file_a_dvc_stage_reads_is_plain_data_and_the_stage_output_is_dvc_tracked(
    ws: Workspace, tmp_path: Path
) -> None:
    # dvc.lock lists each stage's deps as well as its outs: only an out is tracked by DVC
    git_dvc_repo(ws.root, tmp_path / "remote")
    ws.gen({"raw.csv": "a\nb\n"})
    dvc(ws.root, "stage", "add", "-q", "-n", "prep", "-d", "raw.csv", "-o", "clean.csv",
        "cp raw.csv clean.csv")  # fmt: skip
    dvc(ws.root, "repro", "-q")
    assert "path: raw.csv" in (ws.root / "dvc.lock").read_text()
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          raw: {path: raw.csv}
          clean: {path: clean.csv}
        steps:
          both:
            cmd: cat raw.csv clean.csv > both.txt
            deps: [data:raw, data:clean]
            outs: [both.txt]
        """
    )
    done = ws.run_json()
    assert statuses(done) == {"both": "ran"}
    kinds = {d["name"]: (d["kind"], d["tracked_in"]) for d in done["data"]}
    assert kinds == {"raw": ("file", None), "clean": ("dvc", "dvc.lock")}
