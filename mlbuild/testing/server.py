"""``mlbuild serve`` as a real process for the tests that go through the server.

The serving, latency and pytest kinds need the model behind HTTP exactly as users get it: the
same command, the same model resolution from the cache, the same server. It listens on a free port
on 127.0.0.1, is ready when ``/v2/health/ready`` answers 200, and is stopped with SIGTERM (then
SIGKILL) whatever happens; the kernel stops it if mlbuild itself dies.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mlbuild
from mlbuild.errors import MlbuildError

READY_TIMEOUT = 120.0  # loading a big model takes a while; a hung one must not hang the tests
STOP_TIMEOUT = 30.0
_ATTEMPTS = 3  # another process may take the free port between our check and the bind


class ServerError(MlbuildError):
    """The server did not start, or answered what a server must not."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for an mlbuild child process: this mlbuild first on ``PYTHONPATH``, so
    the child runs the same code even when it is not the installed one."""
    here = str(Path(mlbuild.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


class ServerProcess:
    """``mlbuild -f RECIPE serve --port P OVERRIDES`` in the workspace, ready once built; with
    ``bundle``, ``mlbuild serve BUNDLE --port P`` in the bundle's folder, with no recipe."""

    def __init__(self, recipe: Path, overrides: list[str], *, bundle: Path | None = None) -> None:
        self.recipe = recipe
        self.overrides = overrides
        self.bundle = bundle
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="mlbuild-test-server-", suffix=".log"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        for attempt in range(_ATTEMPTS):
            self.port = _free_port()
            self.proc = self._start()
            if self._wait_ready():
                return
            log = self.log_tail()
            if "address already in use" not in log.lower() or attempt == _ATTEMPTS - 1:
                self.stop()
                raise ServerError(f"`mlbuild serve` did not become ready: {log or 'no output'}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> subprocess.Popen[bytes]:
        from mlbuild.exec.process import _die_with  # the one "die with mlbuild" helper

        if self.bundle is not None:
            argv = [sys.executable, "-m", "mlbuild.cli.main", "serve", str(self.bundle)]
            argv += ["--host", "127.0.0.1", "--port", str(self.port)]
            where = self.bundle.parent
        else:
            argv = [sys.executable, "-m", "mlbuild.cli.main", "-f", str(self.recipe), "serve"]
            argv += ["--host", "127.0.0.1", "--port", str(self.port), *self.overrides]
            where = self.recipe.parent
        self._log.truncate(0)
        return subprocess.Popen(
            argv,
            cwd=where,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with(os.getpid()),  # noqa: PLW1509 - only a prctl call runs there
        )

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/v2/health/ready", timeout=2)[0] == 200:
                    return True
            time.sleep(0.05)
        return False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        timeout: float = 60,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A JSON request; the answer parsed (None when it is not JSON)."""
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.request(method, path, data, {"Content-Type": "application/json"})
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, as a CI job or Kubernetes would stop it; SIGKILL if it does not stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
