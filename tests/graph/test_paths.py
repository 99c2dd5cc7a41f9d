"""Hostile recipe paths: `validate` refuses them all at once, located in ml.yaml, and `run` touches
nothing — not the workspace (ml.yaml, .git, other files), not a file outside it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Workspace

HEAD = """\
schema_version: 1
name: demo
steps:
  make:
    cmd: "echo made > made.txt"
"""


def git_repo(ws: Workspace) -> Workspace:
    """``ws`` as a git repository with one commit, and a user's untracked file."""
    ws.gen({"notes.txt": "the user's own notes\n", "src": {"train.py": "print('hi')\n"}})
    for argv in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(argv, cwd=ws.root, check=True, capture_output=True)
    ws.gen({"untracked.txt": "not committed anywhere\n"})
    return ws


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink (target) under ``root`` but mlbuild's own ``.mlbuild``."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".mlbuild"]
        for name in [*dirs, *files]:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


def refused(ws: Workspace, recipe: str) -> list[str]:
    """The located problem lines of `validate`; `run` refuses too and changes nothing."""
    ws.recipe(recipe)
    before = snapshot(ws.root)
    done = ws.cli("validate")
    assert done.returncode == 2, done.stdout
    assert "Traceback" not in done.stderr
    ran = ws.cli("run")
    assert ran.returncode == 2, ran.stdout
    assert "Traceback" not in ran.stderr
    assert snapshot(ws.root) == before
    assert ws.cli("plan").returncode == 2
    return [
        line
        for line in done.stderr.splitlines()
        if line.startswith(("mlbuild: ", "ml.")) or re.match(r"\d+ problems? in ", line)
    ]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("sub/..", "'sub/..' is the repository root itself; name a file or directory inside it"),
        (".", "'.' is the repository root itself; name a file or directory inside it"),
        ("./", "'./' is the repository root itself; name a file or directory inside it"),
        (".git", "'.git' is .git (git's own files); mlbuild never reads or writes there"),
        (
            ".git/hooks/x",
            "'.git/hooks/x' is inside .git (git's own files); mlbuild never reads or writes there",
        ),
        (
            ".mlbuild/x",
            "'.mlbuild/x' is inside .mlbuild (mlbuild's state and cache); mlbuild never reads or "
            "writes there",
        ),
        (
            "ml.yaml",
            "'ml.yaml' is the recipe (ml.yaml); steps may read it, but mlbuild never writes or "
            "removes it",
        ),
        ("../x", "'../x' is outside the repository ({root}); use a path inside it"),
        ("/tmp/x", "'/tmp/x' is outside the repository ({root}); use a path inside it"),
    ],
)
def test_an_out_the_engine_must_never_remove_is_refused(
    ws: Workspace, out: str, message: str
) -> None:
    git_repo(ws)
    lines = refused(ws, HEAD + f"    outs: [{out}]\n")
    assert lines[0] == "mlbuild: ml.yaml:6:12: steps.make.outs[0]: " + message.format(root=ws.root)
    assert lines[-1] == "1 problem in ml.yaml"


def test_an_empty_out_is_refused_by_the_schema(ws: Workspace) -> None:
    lines = refused(ws, HEAD + '    outs: [""]\n')
    assert lines[0] == "mlbuild: ml.yaml:6:12: steps.make.outs[0]: must not be empty"


def test_a_hydra_config_file_or_its_directory_is_never_an_output(ws: Workspace) -> None:
    ws.gen({"conf": {"config.yaml": "lr: 0.1\n"}})
    lines = refused(
        ws,
        """\
schema_version: 1
name: demo
params: {config_dir: conf, config_name: config}
steps:
  a: {cmd: "true", outs: [conf/config.yaml]}
  b: {cmd: "true", outs: [{path: conf}]}
""",
    )
    assert lines == [
        "mlbuild: ml.yaml:5:27: steps.a.outs[0]: 'conf/config.yaml' is inside Hydra's config "
        "directory ('conf'); steps may read it, but mlbuild never writes or removes it",
        "ml.yaml:6:34: steps.b.outs[0].path: 'conf' is Hydra's config directory; steps may read "
        "it, but mlbuild never writes or removes it",
        "2 problems in ml.yaml",
    ]
    assert ws.read("conf/config.yaml") == "lr: 0.1\n"


def test_a_hydra_config_dir_outside_the_repository_is_refused_before_hydra_reads_it(
    ws: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.yaml").write_text("lr: 0.1\n")
    lines = refused(
        ws,
        """\
schema_version: 1
name: demo
params: {config_dir: ../elsewhere, config_name: config}
steps:
  a: {cmd: "true"}
""",
    )
    assert lines[0] == (
        f"mlbuild: ml.yaml:3:22: params.config_dir: '../elsewhere' is outside the repository "
        f"({ws.root}); use a path inside it"
    )


def test_an_out_through_a_symlinked_directory_pointing_outside_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(b"precious \x00\xff bytes")
    git_repo(ws)
    (ws.root / "data").symlink_to(outside)
    lines = refused(
        ws, HEAD.replace("echo made > made.txt", "echo gone > data/victim.txt") + OUTS_VICTIM
    )
    assert lines[0] == (
        f"mlbuild: ml.yaml:6:12: steps.make.outs[0]: 'data/victim.txt' resolves through the "
        f"symlink 'data' to '{outside}/victim.txt', which is outside the repository ({ws.root}); "
        "use a path inside it, or replace the symlink with a real directory"
    )
    assert (outside / "victim.txt").read_bytes() == b"precious \x00\xff bytes"


OUTS_VICTIM = "    outs: [data/victim.txt]\n"


def test_a_symlink_created_after_validate_is_caught_by_the_next_validate_and_run(
    ws: Workspace, tmp_path: Path
) -> None:
    """The compiled graph is cached by the recipe's bytes; the filesystem is checked anew."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious")
    ws.recipe(HEAD.replace("made.txt", "data/victim.txt") + OUTS_VICTIM)
    (ws.root / "data").mkdir()
    assert ws.cli("validate").returncode == 0
    (ws.root / "data").rmdir()
    (ws.root / "data").symlink_to(outside)
    again = ws.cli("validate")
    assert again.returncode == 2
    assert again.stderr.startswith(
        "mlbuild: ml.yaml:6:12: steps.make.outs[0]: 'data/victim.txt' resolves through the "
        "symlink 'data'"
    )
    ran = ws.cli("run")
    assert ran.returncode == 2
    assert "resolves through the symlink 'data'" in ran.stderr
    assert (outside / "victim.txt").read_text() == "precious"


def test_a_path_problem_holds_back_only_the_steps_asked_to_run(
    ws: Workspace, tmp_path: Path
) -> None:
    # `m` is a prefix of `m-2`'s name: the step a recipe key belongs to is matched whole
    outside = tmp_path / "outside"
    outside.mkdir()
    ws.recipe(
        HEAD
        + "    outs: [made.txt]\n"
        + "  m:\n    cmd: echo > m.txt\n    outs: [m.txt]\n"
        + "  m-2:\n    cmd: echo > data/victim.txt\n"
        + OUTS_VICTIM
    )
    (ws.root / "data").mkdir()
    assert ws.cli("validate").returncode == 0
    (ws.root / "data").rmdir()
    (ws.root / "data").symlink_to(outside)
    assert ws.cli("run", "make", "m").returncode == 0
    refused = ws.cli("run", "m-2")
    assert refused.returncode == 2
    assert "steps.m-2.outs[0]: 'data/victim.txt' resolves through the symlink 'data'" in (
        refused.stderr
    )
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("dep", "message"),
    [
        (".git/config", "'.git/config' is inside .git (git's own files); mlbuild never reads or "),
        ("../x", "'../x' is outside the repository"),
        (".mlbuild/state.db", "'.mlbuild/state.db' is inside .mlbuild"),
        (".", "'.' is the repository root itself"),
    ],
)
def test_a_dep_may_not_read_the_root_outside_git_or_mlbuild(
    ws: Workspace, dep: str, message: str
) -> None:
    git_repo(ws)
    lines = refused(ws, HEAD + f"    deps: [{dep}]\n")
    assert lines[0].startswith(f"mlbuild: ml.yaml:6:12: steps.make.deps[0]: {message}")


def test_a_dep_may_read_the_recipe(ws: Workspace) -> None:
    ws.recipe(HEAD + "    deps: [ml.yaml]\n    outs: [made.txt]\n")
    assert ws.cli("validate").returncode == 0
    assert ws.cli("run").returncode == 0


def test_no_recipe_path_may_reach_into_a_shared_cache_inside_the_workspace(ws: Workspace) -> None:
    ws.recipe(HEAD + "    deps: [shared-cache/objects]\n")
    env = {"MLBUILD_CACHE_DIR": str(ws.root / "shared-cache")}
    done = ws.cli("validate", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"mlbuild: ml.yaml:6:12: steps.make.deps[0]: 'shared-cache/objects' is inside mlbuild's "
        f"cache ({ws.root}/shared-cache); use a path outside it (MLBUILD_CACHE_DIR names the cache)"
    )


def test_every_kind_of_recipe_path_is_checked_and_reported_at_once(ws: Workspace) -> None:
    lines = refused(
        ws,
        """\
schema_version: 1
name: demo
environment: {requirements: ../requirements.lock}
data:
  rows: {path: .git/rows.csv, dvc: false}
steps:
  train: {cmd: "true", outs: [model.pkl], metrics: [.mlbuild/m.json]}
model:
  artifacts: {model: /srv/model.pkl}
  class: ../serve.py:Model
  signature:
    inputs: [{name: x, datatype: FP32, shape: [-1]}]
    outputs: [{name: y, datatype: FP32, shape: [-1]}]
""",
    )
    located = [line.removeprefix("mlbuild: ").split(": ") for line in lines[:-1]]
    assert [parts[0] for parts in located] == [
        "ml.yaml:3:29",
        "ml.yaml:5:16",
        "ml.yaml:7:53",
        "ml.yaml:9:22",
        "ml.yaml:10:10",
    ]
    assert [parts[1] for parts in located] == [
        "environment.requirements",
        "data.rows.path",
        "steps.train.metrics[0]",
        "model.artifacts.model",
        "model.class",
    ]
    assert lines[-1] == "5 problems in ml.yaml"


def test_validate_reports_the_missing_inputs_plan_would_refuse_with_the_recipe_errors(
    ws: Workspace,
) -> None:
    lines = refused(
        ws,
        """\
schema_version: 1
name: demo
environment: {requirements: requirements.lock}
data:
  rows: {path: rows.csv, dvc: false}
steps:
  train: {cmd: "true", deps: [train.py, "data:rows"], outs: [../model.pkl]}
""",
    )
    assert lines == [
        "mlbuild: ml.yaml:3:29: environment.requirements: lock file requirements.lock does not "
        "exist; create it (`pipenv lock` or `pip freeze > FILE`) or remove it from the recipe",
        "ml.yaml:5:16: data.rows.path: dataset 'rows': 'rows.csv' does not exist; add the file, "
        "or track it with DVC (`dvc add rows.csv`) so mlbuild can fetch it",
        "ml.yaml:7:31: steps.train.deps[0]: 'train.py' does not exist and no step makes it; "
        "create the file or add a step that lists it in outs",
        f"ml.yaml:7:62: steps.train.outs[0]: '../model.pkl' is outside the repository "
        f"({ws.root}); use a path inside it",
        "4 problems in ml.yaml",
    ]


def test_validate_notices_inputs_that_appear_or_vanish_after_it_was_cached(ws: Workspace) -> None:
    ws.gen({"src": {"train.py": ""}, "rows.csv": "a\n"}).recipe(
        HEAD.replace("steps:", "data:\n  rows: {path: rows.csv, dvc: false}\nsteps:")
        + '    deps: [src/train.py, "data:rows"]\n'
    )
    assert ws.cli("validate").returncode == 0
    (ws.root / "src/train.py").unlink()
    (ws.root / "rows.csv").unlink()
    gone = ws.cli("validate")
    assert gone.returncode == 2
    assert gone.stderr.splitlines()[0] == (
        "mlbuild: ml.yaml:4:16: data.rows.path: dataset 'rows': 'rows.csv' does not exist; add "
        "the file, or track it with DVC (`dvc add rows.csv`) so mlbuild can fetch it"
    )
    assert "ml.yaml:8:12: steps.make.deps[0]: 'src/train.py' does not exist" in gone.stderr
    ws.gen({"src": {"train.py": ""}, "rows.csv": "a\n"})
    assert ws.cli("validate").returncode == 0


def test_validate_json_lists_the_path_problems(ws: Workspace) -> None:
    ws.recipe(HEAD + "    outs: [sub/..]\n")
    done = ws.cli("validate", "--json")
    assert done.returncode == 2
    assert '"path": "steps.make.outs[0]"' in done.stdout
    assert "is the repository root itself" in done.stdout


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('"a\\0b"', "'a\\0b' contains a NUL byte; no path can"),
        ("x" * 300, "is too long (300 bytes, a name of 300)"),
        # a newline or an escape in a path would forge lines in plan, logs and CI output
        ('"a\\nb"', "'a\\nb' contains the control character '\\n'; rename it without one"),
        ('"m\\e[31mred"', "'m\\x1b[31mred' contains the control character '\\x1b'; rename"),
        ('"tab\\tout"', "'tab\\tout' contains the control character '\\t'"),
        # C1 controls, separators and bidi overrides: a terminal or a reader obeys them too
        ('"c1\\x9b2J"', "'c1\\x9b2J' contains the control character '\\x9b'"),
        ('"nel\\Nx"', "'nel\\x85x' contains the control character '\\x85'"),
        ('"ls\\Lx"', "'ls\\u2028x' contains the control character '\\u2028'"),
        ('"rlo\\u202Excod.py"', "'rlo\\u202excod.py' contains the control character '\\u202e'"),
    ],
)
def test_impossible_paths_are_recipe_errors_not_crashes(
    ws: Workspace, raw: str, message: str
) -> None:
    lines = refused(ws, HEAD + f"    outs: [{raw}]\n")
    assert message in lines[0]
