"""A run stuck in mlbuild's own work for a step still stops on SIGTERM, SIGINT or SIGHUP and exits
130, whichever thread is stuck: the main thread deciding a step (resolving a DVC import from a
server that accepts the connection and never answers, as a stalled network does), or a step's
thread fetching its data (a DVC import whose cached object is a FIFO: the read waits for a
writer for ever). No signal ends a blocked read in a thread, so that thread is abandoned and
named, and the process exits without waiting for it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.data.test_dvc import IMPORTER, git_dvc_repo, registry_version


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


@contextlib.contextmanager
def killed_at_the_end(proc: subprocess.Popen[str]) -> Iterator[None]:
    """A run the test failed to stop is killed: no process outlives the test."""
    try:
        yield
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


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
    ws.recipe(IMPORTER.format(repo=f"http://127.0.0.1:{silent.port}/registry.git"))
    proc = ws.start("run")
    with killed_at_the_end(proc):
        assert silent.accepted.wait(60), "the run never asked the server"
        time.sleep(0.5)  # well inside the blocked read
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "mlbuild: interrupted" in stderr
    assert "Traceback" not in stderr


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_step_thread_stuck_fetching_data_is_abandoned_and_the_run_exits_130(
    make_ws: Callable[[str], Workspace], tmp_path: Path
) -> None:
    registry = make_ws("registry")
    git_dvc_repo(registry.root, tmp_path / "registry-remote")
    registry_version(registry, "x,y\n1,2\n", "v1", push=False)
    # the data's only copy is a FIFO: DVC's fetch opens it and waits for a writer
    (cached,) = (p for p in (registry.root / ".dvc/cache").rglob("*") if p.is_file())
    cached.unlink()
    os.mkfifo(cached)

    app = make_ws("app")
    app.recipe(IMPORTER.format(repo="../registry"))
    proc = app.start("run")
    with killed_at_the_end(proc):
        assert proc.stdout is not None
        said = ""
        while "importing dataset 'iris'" not in said:  # (the pytest timeout bounds this)
            line = proc.stdout.readline()
            assert line, proc.communicate()
            said += line
        time.sleep(2)  # the step's thread is in DVC's fetch by now
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, stderr = proc.communicate(timeout=60)
        out = said + out
    assert proc.returncode == 130, stderr
    assert "importing dataset 'iris'" in out
    assert (
        "mlbuild: interrupted; abandoned count, stuck in mlbuild's own work for the step" in stderr
    )
    (record,) = (app.root / ".mlbuild/runs/journal").glob("*.json")
    assert json.loads(record.read_text())["status"] == "interrupted"
