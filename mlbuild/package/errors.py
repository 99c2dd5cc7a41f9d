"""The errors of environments, bundles, images and registries. Each names the thing that failed
and the command or setting that fixes it."""

from __future__ import annotations

from mlbuild.errors import EXIT_USAGE, MlbuildError


class EnvError(MlbuildError):
    """An environment cannot be locked, checked or built: a lock out of date with its Pipfile, a
    hash that does not match, a locker that is not installed."""


class LockError(EnvError):
    """A lock file is not one mlbuild can install from (unpinned, no hashes, malformed)."""

    exit_code = EXIT_USAGE


class BundleError(MlbuildError):
    """A bundle cannot be written, read or trusted (a file that does not hash to the manifest)."""


class DockerError(MlbuildError):
    """The Docker engine is unreachable, a base image is missing, or a build failed."""


class RegistryError(MlbuildError):
    """A registry is unreachable, refused the credentials, or holds the tag with other content."""


class SmokeTestError(MlbuildError):
    """The built image did not start, was not ready, or predicted differently from in-process."""
