"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself in a temp git repository.

pre-commit installs this checkout (as it is now, uncommitted changes included) into its own
virtualenv with pip, exactly as it would from a project's ``.pre-commit-config.yaml``, then runs
the hooks on the files of the repository. Installing takes a while: the environment is built
once for the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, write_tree

pytestmark = pytest.mark.slow

GOOD = """\
# yaml-language-server: $schema=ml.schema.json
schema_version: 1
name: demo
steps:
  train: {cmd: python train.py, outs: [model.pkl]}
"""


def git(cwd: Path, *argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A commit of this checkout's files as they are now, and pre-commit's cache for it."""
    snapshot = tmp_path_factory.mktemp("mlbuild-hooks")
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    git(snapshot, "init", "-q")
    git(snapshot, "add", "-A")
    git(snapshot, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "hooks")
    yield snapshot, git(snapshot, "rev-parse", "HEAD").strip()


def try_repo(
    project: Path, hooks: tuple[Path, str], *hook: str
) -> subprocess.CompletedProcess[str]:
    repo, ref = hooks
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home"),  # shared by this module
        "PYTHONPATH": "",  # the hook runs the mlbuild pre-commit installed, not this checkout
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(repo),
            *hook,
            "--ref",
            ref,
            "--all-files",
            "--color",
            "never",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def project(root: Path, tree: dict[str, str]) -> Path:
    root.mkdir()
    write_tree(root, tree)
    git(root, "init", "-q")
    git(root, "add", "-A")
    return root


def test_the_validate_hook_passes_a_good_recipe_and_fails_a_bad_one_at_its_line(
    tmp_path: Path, hooks_repo: tuple[Path, str]
) -> None:
    good = project(tmp_path / "good", {"ml.yaml": GOOD, "models/ml.yml": GOOD})
    passed = try_repo(good, hooks_repo, "validate")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "mlbuild validate" in passed.stdout and "Passed" in passed.stdout

    broken = GOOD.replace("outs: [model.pkl]}", "outs: [model.pkl], always_run: yes}")
    bad = project(tmp_path / "bad", {"ml.yaml": GOOD, "sub/ml.yaml": broken})
    failed = try_repo(bad, hooks_repo, "validate")
    assert failed.returncode == 1
    assert "Failed" in failed.stdout
    assert (
        "mlbuild: sub/ml.yaml:5:64: steps.train.always_run: expected true or false, got 'yes' "
        "(the recipe is YAML 1.2, where yes, no, on and off are strings; write true or false)"
    ) in failed.stdout
    assert "ml.yaml: valid (1 step: train)" in failed.stdout


def test_the_schema_current_hook_fails_a_stale_schema_file(
    tmp_path: Path, hooks_repo: tuple[Path, str]
) -> None:
    schema = (REPO / "schema" / "ml.schema.json").read_text()
    current = project(tmp_path / "current", {"ml.yaml": GOOD, "ml.schema.json": schema})
    passed = try_repo(current, hooks_repo, "schema-current")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    stale = project(
        tmp_path / "stale", {"ml.yaml": GOOD, "ml.schema.json": schema.replace("Steps", "Stages")}
    )
    failed = try_repo(stale, hooks_repo, "schema-current")
    assert failed.returncode == 1
    assert (
        "mlbuild: ml.schema.json is not the schema of this mlbuild; write it with "
        "`mlbuild schema -o ml.schema.json`"
    ) in failed.stdout
