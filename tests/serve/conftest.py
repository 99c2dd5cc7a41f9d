"""Servers as real processes on 127.0.0.1, and the workspaces they serve."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.test_example_iris import EXAMPLE, STEP_ENV

MEASUREMENTS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
FLOWERS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
SPECIES = ["setosa", "virginica", "versicolor"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """``mlbuild serve`` in ``ws`` on a free port, ready when the constructor returns."""

    def __init__(self, ws: Workspace, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.started = time.monotonic()
        self.proc = ws.start("serve", "--port", str(self.port), *args, env=env)
        self.ready_after = self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited: {self.proc.communicate()[1]}")
            try:
                if self.request("GET", "/v2/health/ready")[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.02)
        raise AssertionError("the server was not ready in time")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = body.encode() if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        status, _, raw = self.request(
            method, path, data, {"Content-Type": "application/json", **(headers or {})}
        )
        return status, json.loads(raw) if raw else None

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as Kubernetes or a CI job would stop it: (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err


@pytest.fixture
def serving(request: pytest.FixtureRequest) -> Iterator[list[Server]]:
    """Servers a test starts; each is stopped at the end whatever happens."""
    servers: list[Server] = []
    yield servers
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.communicate()


@pytest.fixture(scope="session")
def built_iris(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The iris example, run once (its outputs and cache); tests copy it."""
    root = tmp_path_factory.mktemp("built") / "iris"

    def generated(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE
        keep_out = {"data", "model", "metrics.json", ".mlbuild"}
        return {n for n in names if n == "__pycache__" or (at_top and n in keep_out)}

    shutil.copytree(EXAMPLE, root, ignore=generated)
    done = Workspace(root).cli("run", "-q", env=STEP_ENV)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def iris(built_iris: Path, tmp_path: Path) -> Workspace:
    return Workspace(Path(shutil.copytree(built_iris, tmp_path / "iris", symlinks=True)))


# Every Open Inference Protocol datatype as one column of a model that returns its inputs.
TYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
VALID: dict[str, Any] = {
    "BOOL": True,
    **{t: 1 for t in TYPES if t.startswith("UINT")},
    **{t: -1 for t in TYPES if t.startswith("INT")},
    "FP16": 0.5,
    "FP32": 0.5,
    "FP64": 0.5,
    "BYTES": "a",
}
ECHO_RECIPE = """\
schema_version: 1
name: echo
steps:
  config:
    cmd: echo '{}' > echo.json
    outs: [echo.json]
model:
  artifacts: {config: echo.json}
  class: echo.py:Echo
  signature:
    inputs:
%s
    outputs:
%s
"""
ECHO_PY = """\
import os
import time


class Echo:
    def load(self, artifacts):
        self.delay = float(os.environ.get("ECHO_DELAY", "0"))

    def predict(self, inputs):
        if self.delay:
            time.sleep(self.delay)
        return {name.lower(): value for name, value in inputs.items()}
"""


def echo_recipe(extra: tuple[tuple[str, str, str], ...] = ()) -> str:
    """The echo model's recipe: one ``[-1]`` column per datatype, plus ``extra`` tensors given
    as (name, datatype, shape)."""

    def tensors(rename: Any) -> str:
        found = [(t, t, "[-1]") for t in TYPES] + list(extra)
        return "\n".join(
            f"      - {{name: {rename(n)}, datatype: {d}, shape: {s}}}" for n, d, s in found
        )

    return ECHO_RECIPE % (tensors(str), tensors(str.lower))


@pytest.fixture(scope="session")
def built_echo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The columnar echo model, built once (its step run and cached); servers serve it in place."""
    ws = Workspace(tmp_path_factory.mktemp("echo"))
    ws.recipe(echo_recipe()).gen({"echo.py": ECHO_PY})
    done = run_cli(ws, "run", "-q")
    assert done.returncode == 0, done.stderr
    return ws.root


def oip_columns(rows: list[list[float]]) -> dict[str, Any]:
    """An Open Inference Protocol request with one FP64 column per measurement."""
    return {
        "inputs": [
            {"name": name, "datatype": "FP64", "shape": [len(rows)], "data": [r[i] for r in rows]}
            for i, name in enumerate(MEASUREMENTS)
        ]
    }


def run_cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return ws.cli(*args, env=STEP_ENV)
