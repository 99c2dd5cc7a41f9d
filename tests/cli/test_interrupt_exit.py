"""Interrupted (Ctrl-C, SIGTERM, SIGHUP) means exit code 130 and ``mlbuild: interrupted`` —
wherever the interrupt lands, also inside code Python runs from a string (dataclasses and
namedtuples make their methods with ``exec``), where CPython would otherwise remember it and kill
the process with SIGINT at exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CHILD_ENV, Workspace

RECIPE = "schema_version: 1\nname: demo\nsteps:\n  a: {cmd: 'true'}\n"

# The interrupt is raised where a command's module is imported: the first thing a command does,
# and where a real SIGTERM usually lands (the imports are most of a short command's time).
SITE = """\
import importlib, os

_import = importlib.import_module
_how = os.environ.get("MLBUILD_TEST_INTERRUPT", "")


def _interrupting(name, package=None):
    if name.startswith("mlbuild.cli.") and _how == "plain":
        raise KeyboardInterrupt
    if name.startswith("mlbuild.cli.") and _how == "exec":
        exec("raise KeyboardInterrupt")
    if name.startswith("mlbuild.cli.") and _how == "set_name":

        class Field:
            def __set_name__(self, owner, name):
                raise KeyboardInterrupt

        class Model:  # noqa: F841 -- made to call __set_name__
            field = Field()

    return _import(name, package)


importlib.import_module = _interrupting
"""


@pytest.fixture
def interrupting(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE)
    return {"PYTHONPATH": f"{site}:{CHILD_ENV['PYTHONPATH']}"}


@pytest.mark.parametrize("how", ["plain", "exec", "set_name"])
def test_an_interrupt_anywhere_exits_130_saying_interrupted(
    ws: Workspace, interrupting: dict[str, str], how: str
) -> None:
    ws.recipe(RECIPE)
    done = ws.cli("validate", env={**interrupting, "MLBUILD_TEST_INTERRUPT": how})
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr.strip().splitlines()[-1] == "mlbuild: interrupted"
    assert "internal error" not in done.stderr
