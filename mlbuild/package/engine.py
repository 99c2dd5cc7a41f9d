"""The Docker Engine, through the ``docker`` SDK: connect with a message that says what to do when
there is no engine, and check that a base image is there before a build needs it."""

from __future__ import annotations

from typing import Any

from mlbuild.package.errors import DockerError


def connect() -> Any:
    """A client of the engine ``DOCKER_HOST`` names (the local socket by default), which answered;
    the container executor's connection, with a build's longer timeout."""
    from mlbuild.exec.docker_client import EngineError
    from mlbuild.exec.docker_client import connect as engine

    try:
        client = engine("building an image")
    except EngineError as exc:
        raise EngineError(
            f"{exc.message}; or package a bundle instead: `mlbuild package --target bundle`"
        ) from None
    client.api.timeout = _BUILD_TIMEOUT
    return client


# seconds a build may stay silent (pip installing a large wheel) before the engine is given up on
_BUILD_TIMEOUT = 600


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


def image_state(reference: str, image_id: str, base: str, base_id: str) -> str | None:
    """Why the image a cached build made no longer stands for it, or None: the engine no longer
    holds ``image_id`` under ``reference``, or the base image ``base`` is no longer ``base_id``.
    Any doubt (no engine) is a reason too: the build then says what is wrong."""
    import docker

    from mlbuild.exec.docker_client import EngineError

    try:
        client = connect()
    except EngineError as exc:
        return (
            f"cannot ask the Docker engine whether image {reference} is still there ({exc.message})"
        )
    try:
        try:
            image = client.images.get(image_id)
        except docker.errors.ImageNotFound:
            return f"image {reference} ({image_id[:19]}) is no longer on the Docker engine"
        if reference not in image.tags:
            return f"{reference} no longer names the image built ({image_id[:19]})"
        try:
            now = client.images.get(base).id
        except docker.errors.ImageNotFound:
            return f"the base image {base} is no longer on the Docker engine"
        if now != base_id:
            return f"the base image {base} changed ({base_id[:19]} → {now[:19]})"
    except docker.errors.APIError as exc:
        return f"the Docker engine did not answer about image {reference}: {exc.explanation}"
    finally:
        client.close()
    return None
