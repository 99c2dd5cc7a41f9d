"""Environments built from the lock, bundles, Docker images and their publication.

Only this package (and the container executor) imports the Docker SDK, lazily: environments and
bundles need none of it, and ``mlbuild serve BUNDLE`` reads a bundle with the standard library.
"""

from __future__ import annotations

from mlbuild.package.errors import (
    BundleError,
    DockerError,
    EnvError,
    LockError,
    RegistryError,
    SmokeTestError,
)

__all__ = [
    "BundleError",
    "DockerError",
    "EnvError",
    "LockError",
    "RegistryError",
    "SmokeTestError",
]
