"""A no-op `run` and `plan` without a remote cache do not import the remote package (and with it
http.client, ssl, email: a tenth of their imports); a remote named by the recipe or by the
environment is still used, and a bad switch still refused."""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild.cache.remote.settings import PUSH_ENV, READ_ONLY_ENV, REMOTE_ENV
from mlbuild.graph.workspace import REMOTE_VARIABLES
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
    probe = (
        "import contextlib, io, os, sys\n"
        f"for name in {REMOTE_VARIABLES!r}:\n"
        "    os.environ.pop(name, None)\n"
        "from mlbuild.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        code = main({list(argv)!r})\n"
        "    except SystemExit as exit:\n"
        "        code = exit.code\n"
        "print(code, ' '.join(sorted(sys.modules)))\n"
    )
    done = ws.cli_python(probe)
    code, _, names = done.stdout.strip().splitlines()[-1].partition(" ")
    assert code == "0", done.stderr
    return set(names.split())


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
