"""The one way mlbuild reaches a Docker engine: the ``docker`` SDK, imported lazily, with errors a
user can act on.

Only this module imports ``docker`` (through :func:`mlbuild.extras.require`, so a run without
container steps never loads it and a missing SDK is an install hint, exit code 2). The engine is
the one ``DOCKER_HOST`` names, else the local socket — as the ``docker`` command line finds it,
except that Docker contexts (``docker context use``) are not read: set ``DOCKER_HOST`` instead.
An engine that cannot be reached, or an image it does not hold, is a problem of the machine's
setup, not of a step: both are reported with the fix and exit code 2.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from mlbuild.errors import EXIT_USAGE, MlbuildError
from mlbuild.extras import require

DEFAULT_HOST = "unix:///var/run/docker.sock"
# parallel steps each hold a connection for their output stream, plus one per call in flight
_POOL = 64
_CLOSED = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


class EngineError(MlbuildError):
    """The Docker engine cannot be reached, or does not hold what a step needs."""

    exit_code = EXIT_USAGE


def docker_module(purpose: str) -> Any:
    """The ``docker`` SDK, or :class:`~mlbuild.extras.MissingExtraError` naming the extra."""
    return require("docker", "docker", purpose)


def engine_address() -> str:
    """Where the engine is looked for, as said in messages: ``unix:///… (DOCKER_HOST)``."""
    host = os.environ.get("DOCKER_HOST")
    return f"{host} (DOCKER_HOST)" if host else DEFAULT_HOST


def connect(purpose: str) -> Any:
    """A ``docker.DockerClient`` for the engine, which answered; or :class:`EngineError`."""
    docker = docker_module(purpose)
    try:
        client = docker.from_env(max_pool_size=_POOL)
        client.ping()
    except docker.errors.DockerException as exc:
        raise unreachable(exc) from None
    return client


def unreachable(exc: BaseException) -> EngineError:
    """The error for an engine that did not answer, with why and how to start one."""
    cause = _os_error(exc)
    address = engine_address()
    if isinstance(cause, PermissionError):
        return EngineError(
            f"cannot reach the Docker engine at {address}: permission denied; add yourself to "
            "the 'docker' group (`sudo usermod -aG docker $USER`, then log in again)"
        )
    if isinstance(cause, FileNotFoundError):
        why = "no socket there"
    elif isinstance(cause, ConnectionRefusedError):
        why = "connection refused"
    elif cause is not None:
        why = cause.strerror or str(cause)
    else:
        why = str(exc).removeprefix("Error while fetching server API version: ")
    return EngineError(
        f"cannot reach the Docker engine at {address}: {why}; start it (`sudo systemctl start "
        "docker`, or `sudo dockerd &`) or point DOCKER_HOST at a running engine"
    )


def lost(exc: BaseException, during: str) -> EngineError:
    """The error for an engine that stopped answering ``during`` something (``step 'a' ran``)."""
    cause = _os_error(exc)
    if cause is not None and cause.errno not in _CLOSED:
        why = cause.strerror or str(cause)
    elif cause is not None or _names(exc) & {"RemoteDisconnected", "ProtocolError"}:
        why = "it closed the connection"  # reset, broken pipe or no answer: the same to a user
    else:
        why = str(exc)
    return EngineError(
        f"lost the Docker engine at {engine_address()} while {during}: {why}; if the engine "
        "still runs the container, the next `mlbuild run` here removes it"
    )


def is_connection_error(exc: BaseException) -> bool:
    """Did ``exc`` come from losing the engine (rather than from the engine's answer)?"""
    return _os_error(exc) is not None or type(exc).__name__ in {
        "ConnectionError",
        "ReadTimeout",
        "ChunkedEncodingError",
    }


def image_id(client: Any, name: str) -> str:
    """The id (``sha256:…``) of image ``name`` in the engine, or :class:`EngineError`."""
    docker = docker_module("a container step")
    try:
        found: str = client.images.get(name).id
    except docker.errors.ImageNotFound:
        raise EngineError(
            f"image '{name}' is not in the Docker engine at {engine_address()}; pull it "
            f"(`docker pull {name}`) or build it (`docker build -t {name} .`)"
        ) from None
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot look up image '{name}': {explain(exc)}") from None
    except docker.errors.DockerException as exc:
        raise unreachable(exc) from None
    return found


def explain(exc: BaseException) -> str:
    """The engine's own words for a refused request (``APIError.explanation``), else the text."""
    text = getattr(exc, "explanation", None) or str(exc)
    return str(text.decode(errors="replace") if isinstance(text, bytes) else text)


def _os_error(exc: BaseException) -> OSError | None:
    """The operating-system error at the root of a requests/urllib3 chain, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        for arg in current.args:  # urllib3 keeps the cause in args, not in __cause__
            if isinstance(arg, OSError) and arg.errno is not None:
                return arg
            if isinstance(arg, BaseException):
                nested = _os_error(arg)
                if nested is not None:
                    return nested
        current = current.__cause__ or current.__context__
    return None


def _names(exc: BaseException) -> set[str]:
    """The class names of ``exc`` and of the exceptions in its chain and arguments."""
    names: set[str] = set()
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 64:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        names.add(type(current).__name__)
        stack += [a for a in current.args if isinstance(a, BaseException)]
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]
    return names
