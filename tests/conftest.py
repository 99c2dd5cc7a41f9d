"""Shared helpers: build a workspace in a tmp dir in one line, run the real CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
# `dvc` commands the tests run would each start an analytics daemon that tries the network
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Subprocesses import mlbuild from this checkout, whatever else is installed.
CHILD_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def write_tree(root: Path, tree: dict[str, Any]) -> None:
    """``{"a.txt": "x", "d": {"b.txt": "y"}}`` → files under ``root`` (text is dedented)."""
    for name, content in tree.items():
        path = root / name
        if isinstance(content, dict):
            path.mkdir(parents=True, exist_ok=True)
            write_tree(path, content)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content).lstrip("\n"))


class Workspace:
    """A tmp directory with an ``ml.yaml``, and the ``mlbuild`` CLI run in it for real."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gen(self, tree: dict[str, Any]) -> Workspace:
        write_tree(self.root, tree)
        return self

    def recipe(self, text: str) -> Workspace:
        return self.gen({"ml.yaml": text})

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlbuild.cli.main", *args],
            cwd=self.root,
            env={**os.environ, **CHILD_ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli_python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run Python ``code`` in the workspace, as the CLI would run there."""
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.root,
            env={**os.environ, **CHILD_ENV},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "mlbuild.cli.main", *args],
            cwd=self.root,
            env={**os.environ, **CHILD_ENV, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run_json(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """``mlbuild run --json ARGS``; fails the test unless it exits 0."""
        done = self.cli("run", "--json", *args, env=env)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def read(self, name: str) -> str:
        return (self.root / name).read_text()


def rewrite_keeping_stat(path: Path, text: str) -> None:
    """New content of the same size in the same inode, the mtime put back as it was."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with open(path, "r+", encoding="utf-8") as handle:
        handle.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def statuses(result: dict[str, Any]) -> dict[str, str]:
    """``{"steps": [{"name": "a", "status": "ran"}]}`` → ``{"a": "ran"}``."""
    return {step["name"]: step["status"] for step in result["steps"]}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "repo"
    root.mkdir()
    return Workspace(root)


@pytest.fixture
def make_ws(tmp_path: Path) -> Callable[[str], Workspace]:
    def make(name: str) -> Workspace:
        root = tmp_path / name
        root.mkdir()
        return Workspace(root)

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server for this test session (one per xdist worker); see tests/postgres.py."""
    from tests.postgres import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """An S3 API server (moto) for this test session (one per xdist worker); see tests/s3.py."""
    from tests.s3 import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """The Docker engine and the base image (tests/docker_engine.py); skips without an engine."""
    from tests.docker_engine import engine

    return engine()
