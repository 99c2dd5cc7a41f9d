"""The recipe's ``package:`` section and ``environment.isolated``, resolved for the graph: plain
data with every path checked by the workspace's fence (``mlbuild.paths``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from mlbuild.paths import UnsafePathError, normalise

if TYPE_CHECKING:
    from mlbuild.recipe import KeyPath, Recipe


@dataclass(frozen=True)
class DockerSpec:
    image: str
    base: str
    registry: str | None
    system_packages: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    user: str = "mlbuild"
    port: int = 8080


@dataclass(frozen=True)
class PackageSpec:
    """``code`` lists files and folders of servable code (only ``.py`` files of a folder when
    ``code_py_only``: the default, the folder holding ``model.class``)."""

    code: list[str]
    code_py_only: bool
    sample: str | None
    bundle: str | None
    docker: DockerSpec | None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PackageSpec:
        docker = DockerSpec(**raw["docker"]) if raw.get("docker") else None
        return cls(**{**raw, "docker": docker})


class PathChecker(Protocol):
    def check(self, raw: str, key: KeyPath, *, writes: bool) -> str | None: ...


def compile_package(
    recipe: Recipe,
    paths: PathChecker,
) -> PackageSpec | None:
    """The ``package:`` section with its paths checked."""
    section = recipe.package
    if section is None:
        return None
    code: list[str] = []
    if section.code is not None:
        for index, raw in enumerate(section.code):
            normal = paths.check(raw, ("package", "code", index), writes=False)
            code.append(normal or raw)
    elif recipe.model is not None and recipe.model.class_ is not None:
        file = recipe.model.class_.rpartition(":")[0]
        folder = str(PurePosixPath(file).parent)
        if folder != ".":
            code.append(paths.check(folder, ("model", "class"), writes=False) or folder)
        else:
            code.append(paths.check(file, ("model", "class"), writes=False) or file)
    sample = None
    if section.sample is not None:
        sample = paths.check(section.sample, ("package", "sample"), writes=False)
    bundle = None
    if section.bundle is not None:
        # checked, and its clashes with other outputs reported, by the package:bundle step
        # that writes it (mlbuild.package.steps)
        with contextlib.suppress(UnsafePathError):
            bundle = normalise(section.bundle)
    docker = None
    if section.docker is not None:
        d = section.docker
        docker = DockerSpec(
            image=d.image,
            base=d.base,
            registry=d.registry,
            system_packages=list(d.system_packages),
            labels=dict(d.labels),
            user=d.user,
            port=d.port,
        )
    return PackageSpec(
        code=code,
        code_py_only=section.code is None,
        sample=sample,
        bundle=bundle,
        docker=docker,
    )
