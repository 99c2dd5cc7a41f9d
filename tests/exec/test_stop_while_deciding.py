"""A run stuck in mlbuild's own work for a step still stops on SIGTERM, SIGINT or SIGHUP and exits
130, whichever thread is stuck: the main thread deciding a step (resolving a DVC import from a
server that accepts the connection and never answers, as a stalled network does), or a step's
thread fetching its data (a DVC import whose cached object is a FIFO: the read waits for a
writer for ever). No signal ends a blocked read in a thread, so that thread is abandoned and
named, and the process exits without waiting for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace
from tests.data.test_dvc import dvc, git_dvc_repo, sh

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


IMPORTER = """\
schema_version: 1
name: app
data:
  iris:
    path: data/iris.csv
    import: {repo: ../registry, rev: v1, path: sets/iris.csv}
steps:
  count: {cmd: wc -l < data/iris.csv > n.txt, deps: [data:iris], outs: [n.txt]}
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_step_thread_stuck_fetching_data_is_abandoned_and_the_run_exits_130(
    make_ws: Callable[[str], Workspace], tmp_path: Path
) -> None:
    registry = make_ws("registry")
    git_dvc_repo(registry.root, tmp_path / "registry-remote")
    registry.gen({"sets": {"iris.csv": "x,y\n1,2\n"}})
    dvc(registry.root, "add", "-q", "sets/iris.csv")
    sh(registry.root, "git", "add", "-A")
    sh(registry.root, "git", "commit", "-qm", "v1")
    sh(registry.root, "git", "tag", "v1")
    # the data's only copy is a FIFO: DVC's fetch opens it and waits for a writer
    (cached,) = (p for p in (registry.root / ".dvc/cache").rglob("*") if p.is_file())
    cached.unlink()
    os.mkfifo(cached)

    app = make_ws("app")
    app.recipe(IMPORTER)
    proc = app.start("run")
    try:
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "importing dataset 'iris'" in out
    assert (
        "mlbuild: interrupted; abandoned count, stuck in mlbuild's own work for the step" in stderr
    )
    (record,) = (app.root / ".mlbuild/runs/journal").glob("*.json")
    assert json.loads(record.read_text())["status"] == "interrupted"
