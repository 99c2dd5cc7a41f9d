"""A run whose main thread is stuck deciding a step (here: resolving a DVC import from a server
that accepts the connection and never answers, as a stalled network does) still stops on
SIGTERM, SIGINT or SIGHUP and exits 130: the stop signal no longer only sets a flag that the
stuck thread would never look at."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Workspace

RECIPE = """\
schema_version: 1
name: app
data:
  iris:
    path: data/iris.csv
    import: {{repo: "http://127.0.0.1:{port}/registry.git", rev: v1, path: sets/iris.csv}}
steps:
  count: {{cmd: wc -l < data/iris.csv > n.txt, deps: [data:iris], outs: [n.txt]}}
"""


class SilentServer:
    """Accepts connections on loopback, reads nothing, answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_stop_signal_ends_a_run_stuck_deciding_a_step(
    ws: Workspace, silent: SilentServer, sig: signal.Signals
) -> None:
    ws.recipe(RECIPE.format(port=silent.port))
    proc = ws.start("run")
    try:
        assert silent.accepted.wait(60), "the run never asked the server"
        time.sleep(0.5)  # well inside the blocked read
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "mlbuild: interrupted" in stderr
    assert "Traceback" not in stderr
