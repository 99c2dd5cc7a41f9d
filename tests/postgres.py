"""A real PostgreSQL server for the tests: Debian's binaries, a temp data dir, a free local port.

``scripts/test`` installs Debian's ``postgresql`` when ``initdb`` is missing. PostgreSQL refuses to
run as root, so under root the server runs as the ``postgres`` user. The tests fail — they do not
skip — when PostgreSQL is missing, unless ``MLBUILD_TEST_NO_PG=1`` is set (for local work only;
CI never sets it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SKIP_ENV = "MLBUILD_TEST_NO_PG"


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One server; :meth:`database` makes a fresh, empty database and returns its URL."""

    def __init__(self) -> None:
        initdb, postgres = _binary("initdb"), _binary("postgres")
        if initdb is None or postgres is None:
            message = (
                "PostgreSQL is not installed: run ./scripts/test (it installs Debian's "
                "postgresql) or `apt-get install postgresql`; set MLBUILD_TEST_NO_PG=1 to skip "
                "these tests locally"
            )
            if os.environ.get(SKIP_ENV) == "1":
                pytest.skip(message)
            pytest.fail(message)
        self.root = Path(tempfile.mkdtemp(prefix="mlbuild-pg-"))
        self.data = self.root / "data"
        self.user: dict[str, int] = {}
        if os.geteuid() == 0:  # postgres will not run as root
            entry = pwd.getpwnam("postgres")
            self.user = {"user": entry.pw_uid, "group": entry.pw_gid}
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"])
        self.port = _free_port()
        self.log = (self.root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                postgres,
                "-D", str(self.data),
                "-p", str(self.port),
                "-k", str(self.root),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off",
                "-c", "max_connections=200",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            **self.user,  # type: ignore[arg-type]
        )  # fmt: skip
        self._wait_ready()

    def _run(self, argv: list[str]) -> None:
        done = subprocess.run(
            argv,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            **self.user,  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            pytest.fail(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    def _wait_ready(self) -> None:
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg2.connect(self._dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.root / "server.log").read_text(errors="replace")
                    pytest.fail(f"PostgreSQL did not start:\n{log}")
                time.sleep(0.1)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def database(self) -> str:
        """A new empty database's SQLAlchemy URL."""
        import psycopg2

        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(self._dsn("postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')  # our own hex name, not user input
        finally:
            conn.close()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: the data is thrown away
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()
