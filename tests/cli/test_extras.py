"""A library an extra installs, missing: the message names the `pip install` to run, exit 2.

Each test runs the real CLI in a child process in which the library cannot be imported (its
``sys.modules`` entry is None, which is how Python reports a module that is not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import CHILD_ENV, Workspace

RECIPE = """\
schema_version: 1
name: demo
steps:
  make: {cmd: echo 1 > n.txt, outs: [n.txt]}
"""


def cli_without(
    ws: Workspace, missing: list[str], *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {missing!r}:\n"
        "    sys.modules[name] = None\n"
        "from mlbuild.cli.main import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_without_the_serve_extra(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    done = cli_without(ws, ["uvicorn"], "serve")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: `mlbuild serve` needs the 'uvicorn' package, which is not installed; install "
        "it with `pip install 'mlbuild-engine[serve]'`\n",
    )


def test_predict_without_numpy(ws: Workspace) -> None:
    ws.recipe(RECIPE).gen({"rows.csv": "a\n1\n"})
    done = cli_without(ws, ["numpy"], "predict", "rows.csv")
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: `mlbuild predict` needs the 'numpy' package, which is not installed; install "
        "it with `pip install 'mlbuild-engine[serve]'`\n",
    )


def test_a_postgresql_store_without_its_driver(ws: Workspace) -> None:
    ws.recipe(RECIPE)
    store = {"MLBUILD_STORE": "postgresql://mlbuild@127.0.0.1:1/runs"}
    done = cli_without(ws, ["psycopg2"], "runs", "list", env=store)
    assert (done.returncode, done.stderr) == (
        2,
        "mlbuild: a PostgreSQL run store needs the 'psycopg2' package, which is not installed; "
        "install it with `pip install 'mlbuild-engine[postgres]'`\n",
    )
    chosen = {"MLBUILD_STORE": "postgresql+psycopg://mlbuild@127.0.0.1:1/runs"}
    other = cli_without(ws, ["psycopg"], "run", env=chosen)
    assert (other.returncode, other.stderr) == (
        2,
        "mlbuild: the run store URL names the driver postgresql+psycopg, whose package 'psycopg' "
        "is not installed; install it, or use postgresql:// (psycopg2: `pip install "
        "'mlbuild-engine[postgres]'`)\n",
    )


def test_dvc_data_without_the_dvc_extra(ws: Workspace) -> None:
    ws.recipe(
        """\
        schema_version: 1
        name: demo
        data:
          rows: {path: rows.csv}
        steps:
          count: {cmd: wc -l < rows.csv > n.txt, deps: ["data:rows"], outs: [n.txt]}
        """
    ).gen(
        {
            "rows.csv": "a\n",
            # the md5 DVC records for "a\n"; no DVC needed to write it
            "rows.csv.dvc": "outs:\n- md5: 60b725f10c9c85c70d97880dfe8191b3\n  size: 2\n"
            "  hash: md5\n  path: rows.csv\n",
        }
    )
    expected = (
        "mlbuild: this recipe's DVC data needs the 'dvc' package, which is not installed; "
        "install it with `pip install 'mlbuild-engine[dvc]'`\n"
    )
    planned = cli_without(ws, ["dvc"], "plan")
    assert (planned.returncode, planned.stderr) == (2, expected)
    pushed = cli_without(ws, ["dvc"], "push")
    assert (pushed.returncode, pushed.stderr) == (2, expected)


def test_a_missing_mlbuild_module_is_still_a_bug(ws: Workspace) -> None:
    """Only libraries are an install problem: a module of mlbuild itself missing is an internal
    error with a traceback log, never advice to install an extra."""
    ws.recipe(RECIPE)
    done = cli_without(ws, ["mlbuild.serve.server"], "serve")
    assert done.returncode == 3
    assert "internal error: ModuleNotFoundError" in done.stderr
    assert "pip install" not in done.stderr
