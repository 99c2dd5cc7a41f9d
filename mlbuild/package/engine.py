"""The Docker Engine, through the ``docker`` SDK: connect with a message that says what to do when
there is no engine, and check that a base image is there before a build needs it."""

from __future__ import annotations

import os
from typing import Any

from mlbuild.extras import require
from mlbuild.package.errors import DockerError


def connect() -> Any:
    """A client of the engine ``DOCKER_HOST`` (default: the local socket) names, checked alive."""
    docker = require("docker", "docker", "building an image")
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerError(
            f"cannot reach the Docker engine at {where} ({_reason(exc)}); start it (`sudo "
            "systemctl start docker`, or `dockerd &`), point DOCKER_HOST at one, or package a "
            "bundle instead: `mlbuild package --target bundle`"
        ) from None
    return client


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("No such file or directory", "Connection refused", "Permission denied"):
        if known in text:
            return known.lower()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def base_image(client: Any, reference: str) -> Any:
    """The base image ``reference`` from the engine's images (never pulled implicitly)."""
    import docker

    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        raise DockerError(
            f"the base image {reference} (package.docker.base) is not on this Docker engine; "
            f"pull it (`docker pull {reference}`) or build it, then package again"
        ) from None
    except docker.errors.APIError as exc:
        raise DockerError(f"cannot inspect the base image {reference}: {exc.explanation}") from None


_PROBE = (
    "import platform, sys; print(platform.python_version(), platform.libc_ver()[1] or '', "
    "platform.machine())"
)


def probe_platform(client: Any, image: Any, cache_dir: Any) -> Any:
    """The :class:`~mlbuild.package.runtime.Platform` of ``image`` (run once per image id, then
    read from ``cache_dir``)."""
    import json

    import docker

    from mlbuild import atomic
    from mlbuild.package.runtime import Platform

    known = cache_dir / f"{image.id.replace(':', '-')}.json"
    try:
        return Platform(**json.loads(known.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    try:
        out = client.containers.run(
            image.id,
            ["python3", "-c", _PROBE],
            remove=True,
            network_mode="none",
            entrypoint=[],
            user="65534:65534",
        )
    except docker.errors.ContainerError as exc:
        raise DockerError(
            f"the base image {image.tags[0] if image.tags else image.id[:19]} has no working "
            f"python3 ({exc.stderr.decode(errors='replace').strip()[:200]}); use a base image "
            "with Python 3 and its venv module (python:3.11-slim-bookworm)"
        ) from None
    parts = out.decode().split()
    if len(parts) != 3 or not parts[1]:
        raise DockerError(
            f"the base image's python3 reports '{out.decode().strip()}'; mlbuild needs a "
            "glibc-based image (Debian, Ubuntu) to install manylinux wheels"
        )
    found = Platform(python=parts[0], glibc=parts[1], machine=parts[2])
    atomic.write_json(
        known, {"python": found.python, "glibc": found.glibc, "machine": found.machine}
    )
    return found
