"""The real Docker engine for container tests, and the base image ``scripts/services`` builds.

Tests that need the engine skip, with the reason, only when no engine can be reached at all (a
laptop without Docker); CI starts one (``scripts/services``), so there they always run. A missing
base image fails them: ``scripts/services`` builds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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
