"""mlbuild's serving runtime in an image: mlbuild's own modules and the libraries ``mlbuild serve``
imports, pinned to the versions this mlbuild runs with (and so is tested with).

The model's lock wins: a library it pins (numpy) is not installed twice. The closure is read from
the installed distributions' metadata, with markers evaluated for the image's Python.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

from mlbuild.extras import install_command
from mlbuild.package.errors import DockerError
from mlbuild.package.locks import canonical

# what `mlbuild serve BUNDLE` imports: the server stack, its JSON and hashing
ROOTS = ("uvicorn", "httptools", "uvloop", "orjson", "numpy", "blake3")


@dataclass(frozen=True)
class Platform:
    """The image's Python and C library, from its base image."""

    python: str  # "3.11.2"
    glibc: str  # "2.36"
    machine: str  # "x86_64"

    @property
    def python_tag(self) -> str:
        major, minor = self.python.split(".")[:2]
        return f"{major}{minor}"

    def pip_options(self) -> list[str]:
        """pip's options to fetch wheels for this platform: every manylinux tag up to its glibc."""
        major, minor = (int(p) for p in self.glibc.split(".")[:2])
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 16, -1)]
        tags += [f"manylinux2014_{self.machine}", f"manylinux2010_{self.machine}"]
        tags += [f"manylinux1_{self.machine}"]
        options = ["--only-binary=:all:", "--implementation", "cp"]
        options += ["--python-version", ".".join(self.python.split(".")[:2])]
        for abi in (f"cp{self.python_tag}", "abi3", "none"):
            options += ["--abi", abi]
        for tag in [*tags, "any"]:
            options += ["--platform", tag]
        return options

    def describe(self) -> str:
        return f"CPython {self.python} on glibc {self.glibc} {self.machine}"


def runtime_pins(platform: Platform, exclude: set[str]) -> dict[str, str]:
    """Distribution name → version of the serving runtime's closure, minus ``exclude``."""
    environment = {
        "python_version": ".".join(platform.python.split(".")[:2]),
        "python_full_version": platform.python,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": platform.machine,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    pending = list(ROOTS)
    while pending:
        name = canonical(pending.pop())
        if name in pins or name in exclude:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise DockerError(
                f"the serving runtime needs {name}, which is not installed here; install "
                f"it with `{install_command('serve')}`"
            ) from None
        pins[name] = dist.version
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate(environment):
                pending.append(req.name)
    return dict(sorted(pins.items()))


def mlbuild_files() -> dict[str, Path]:
    """mlbuild's own modules: ``mlbuild/…`` → file (sources and ``py.typed``, no caches)."""
    import mlbuild

    package = Path(mlbuild.__file__).resolve().parent
    found: dict[str, Path] = {}
    for folder, dirs, names in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py") or name == "py.typed":
                path = Path(folder) / name
                found[f"mlbuild/{path.relative_to(package).as_posix()}"] = path
    return found
