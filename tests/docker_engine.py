"""The real Docker engine for container tests, and the base image ``scripts/services`` builds.

Tests that need the engine skip, with the reason, only when no engine can be reached at all (a
laptop without Docker); CI starts one (``scripts/services``), so there they always run. A missing
base image fails them: ``scripts/services`` builds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BASE_IMAGE = "mlbuild-base:bookworm"
LABEL = "dev.mlbuild.workspace"


class Engine:
    """The engine's client, and helpers to look at what mlbuild leaves in it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.base_id: str = client.images.get(BASE_IMAGE).id

    def containers_of(self, workspace: Path) -> list[Any]:
        """Every container (running or not) labelled with ``workspace``."""
        key = hashlib.sha256(os.fsencode(os.path.abspath(workspace))).hexdigest()[:32]
        found: list[Any] = self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={key}"}
        )
        return found

    @contextlib.contextmanager
    def image_name(self) -> Iterator[str]:
        """A fresh name tagged to the base image, untagged afterwards."""
        name = f"mlbuild-test-{uuid.uuid4().hex[:12]}:1"
        self.client.images.get(BASE_IMAGE).tag(name)
        try:
            yield name
        finally:
            with contextlib.suppress(Exception):
                self.client.images.remove(name)

    def variant(self, name: str, marker: str) -> str:
        """Build a new image from the base (one label more: a new id) and tag it ``name``."""
        import io

        dockerfile = f"FROM {BASE_IMAGE}\nLABEL dev.mlbuild.test={marker}\n"
        image, _ = self.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), rm=True)
        image.tag(name)
        image_id: str = image.id
        return image_id


class EngineProxy:
    """A unix socket that passes every connection on to the real engine, until :meth:`cut`: then
    every connection through it breaks at once, as when the engine dies (which tests cannot do to
    the engine everyone here shares)."""

    def __init__(self, path: Path, engine_socket: str = "/var/run/docker.sock") -> None:
        self.address = f"unix://{path}"
        self._engine = engine_socket
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(path))
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            self._listener.close()
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._cut.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self._engine)
            with self._lock:
                if self._cut.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while (data := source.recv(65536)) and not self._cut.is_set():
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def remove_containers(workspace: Path) -> None:
    """Remove every container labelled with ``workspace`` (what a test that failed half-way left
    behind); nothing when no engine answers."""
    try:
        import docker

        client = docker.from_env()
        key = hashlib.sha256(os.fsencode(os.path.abspath(workspace))).hexdigest()[:32]
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={key}"}):
            container.remove(force=True)
    except Exception:  # no SDK or no engine: no container either
        pass


def engine() -> Engine:
    try:
        import docker
    except ImportError:
        pytest.fail("the docker SDK is missing: pip install -e '.[dev]' (./scripts/test does)")
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine can be reached ({exc}); ./scripts/services starts one")
    try:
        return Engine(client)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the base image {BASE_IMAGE} is missing: run ./scripts/services as root")
