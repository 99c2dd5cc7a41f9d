"""A no-op `run` and `plan` without a remote cache do not import the remote package (and with it
http.client, ssl, email: a tenth of their imports); a remote named by the recipe or by the
environment is still used, and a bad switch still refused."""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild.cache.remote.settings import PUSH_ENV, READ_ONLY_ENV, REMOTE_ENV
from mlbuild.graph.workspace import REMOTE_VARIABLES
from tests.cli.test_commands import imported_modules
from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: demo
steps:
  make:
    cmd: "echo made > made.txt"
    outs: [made.txt]
"""

REMOTE = ("mlbuild.cache.remote", "http.client", "ssl")


def modules(ws: Workspace, *argv: str) -> set[str]:
    """The modules a command imported (in a clean environment: no remote variable set)."""
    code, names, stderr = imported_modules(ws, *argv, unset=REMOTE_VARIABLES)
    assert code == "0", stderr
    return names


def test_a_no_op_run_and_plan_without_a_remote_import_no_remote_code(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    assert ws.cli("run", "-q").returncode == 0
    for argv in (["run", "-q"], ["plan"]):
        assert modules(ws, *argv) & set(REMOTE) == set(), argv


def test_the_variables_that_skip_the_remote_are_those_the_remote_settings_read() -> None:
    assert set(REMOTE_VARIABLES) == {REMOTE_ENV, READ_ONLY_ENV, PUSH_ENV}


def test_a_remote_named_by_the_environment_is_still_used(ws: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    ws.recipe(RECIPE)
    done = ws.cli("run", env={REMOTE_ENV: str(remote)})
    assert done.returncode == 0, done.stderr
    assert "remote cache" in done.stdout and "uploaded 1" in done.stdout
    assert any(files for _, _, files in os.walk(remote))


def test_a_remote_named_by_the_recipe_is_still_used(ws: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    ws.recipe(RECIPE + f"cache:\n  remote: {remote}\n")
    done = ws.cli("run")
    assert done.returncode == 0, done.stderr
    assert "uploaded 1" in done.stdout
    assert any(files for _, _, files in os.walk(remote))


def test_a_bad_switch_is_refused_without_a_remote_as_before(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("run", env={READ_ONLY_ENV: "maybe"})
    assert done.returncode == 2
    assert done.stderr == (
        "mlbuild: MLBUILD_REMOTE_READ_ONLY: expected 1 or 0 (true or false), got 'maybe'\n"
    )
