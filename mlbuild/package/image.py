"""Build the model's image through the Docker Engine API, from the generated Dockerfile.

The build context is assembled here as a tar stream: the Dockerfile, the two wheelhouses (the
lock's, the serving runtime's), mlbuild's modules, the model's code and the model's files (the
bundle). Layers are cached by the engine, so a model-only change rebuilds the last two ``COPY``
layers and the labels. The build runs with ``network_mode="none"`` unless system packages are
asked for, which proves the dependency layers need no network.

The image is tagged only once the build succeeded: a failed build leaves no tag. Its identity is
the ``dev.mlbuild.content`` label: a hash of everything that decides what the image serves (the
Dockerfile's body, the base image, the wheelhouses, mlbuild's modules, the bundle's files), not
of when or where it was built, so a registry tag can be compared with a new build.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mlbuild.cache import hash_bytes, hash_regular_file
from mlbuild.package.bundle import MANIFEST, Bundle
from mlbuild.package.dockerfile import DockerfileSpec, body, render
from mlbuild.package.errors import DockerError
from mlbuild.package.provenance import LABEL_PREFIX

CONTENT_LABEL = f"{LABEL_PREFIX}.content"


@dataclass(frozen=True)
class BuiltImage:
    repository: str
    tag: str
    image_id: str
    size: int
    content: str
    base_id: str = ""  # the base image's id: a cached build holds only while the base is this
    labels: dict[str, str] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def size_mb(self) -> float:
        return self.size / 1e6

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "image_id": self.image_id,
            "size": self.size,
            "content": self.content,
            "labels": self.labels,
        }


def dockerfile_spec(graph: Any) -> DockerfileSpec:
    from mlbuild import __version__

    docker = graph.package.docker
    return DockerfileSpec(
        base=docker.base,
        user=docker.user,
        port=docker.port,
        system_packages=list(docker.system_packages),
        mlbuild_version=__version__,
    )


def dockerfile_for(ws: Any, graph: Any) -> str:
    """The Dockerfile ``mlbuild package`` would build, with its labels."""
    from mlbuild.package.gather import gather

    gathered = gather(ws, graph, store=None)
    labels = {**graph.package.docker.labels, **gathered.provenance.labels()}
    return render(dockerfile_spec(graph), labels)


def build_image(
    ws: Any,
    graph: Any,
    gathered: Any,
    *,
    progress: Callable[[str], None],
    tag: bool = True,
    extra_labels: Mapping[str, str] | None = None,
) -> BuiltImage:
    """Build the image of ``gathered`` (see :mod:`mlbuild.package.gather`) and tag it
    ``IMAGE:VERSION`` (unless not ``tag``: publish tags only what it may publish).
    ``extra_labels`` (the tests' gate) are labels only: they do not change the content id."""
    from mlbuild.package.engine import base_image, connect, probe_platform
    from mlbuild.package.locks import read_lock
    from mlbuild.package.runtime import mlbuild_files, runtime_pins
    from mlbuild.package.wheelhouse import lock_wheels, runtime_wheels

    docker = graph.package.docker
    if graph.lock_file is None:
        raise DockerError(
            "the image installs the model's dependencies from the environment's lock; declare "
            "`environment: {requirements: requirements.lock}` (or `pipfile: Pipfile`) in ml.yaml"
        )
    client = connect()
    base = base_image(client, docker.base)
    platform = probe_platform(client, base, ws.cache.root / "images")
    lock = read_lock(ws.root / graph.lock_file, graph.lock_file)
    progress(f"fetching the wheels of {lock.path} for {platform.describe()}")
    lock_house = lock_wheels(ws.cache.root, lock, ws.root / graph.lock_file, platform)
    pins = runtime_pins(platform, exclude=set(lock.pins))
    runtime_house = runtime_wheels(ws.cache.root, pins, platform)
    spec = dockerfile_spec(graph)
    files = _context_files(lock_house, runtime_house, mlbuild_files(), gathered.bundle)
    content = _content(spec, base.id, files, gathered.bundle)
    labels = {
        **docker.labels,
        **gathered.provenance.labels(),
        **(extra_labels or {}),
        CONTENT_LABEL: content,
    }
    text = render(spec, labels)
    progress(f"building the image of model '{gathered.provenance.model_name}' on {docker.base}")
    image_id = _build(client, text, files, network="host" if docker.system_packages else "none")
    version = gathered.provenance.version
    image = client.images.get(image_id)
    if tag:
        image.tag(docker.image, version)
    return BuiltImage(
        repository=docker.image,
        tag=version,
        image_id=image_id,
        size=int(image.attrs.get("Size", 0)),
        content=content,
        base_id=base.id,
        labels=labels,
        layers=list(image.attrs.get("RootFS", {}).get("Layers", [])),
    )


def _context_files(
    lock_house: Path, runtime_house: Path, runtime: dict[str, Path], bundle: Bundle
) -> dict[str, Path | bytes]:
    files: dict[str, Path | bytes] = {}
    for prefix, house in (("wheels/lock", lock_house), ("wheels/runtime", runtime_house)):
        for entry in sorted(house.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                files[f"{prefix}/{entry.name}"] = entry
    for rel, path in runtime.items():
        files[f"runtime/{rel}"] = path
    for tool in ("elfstrip.py", "pystrip.py"):
        files[f"tools/{tool}"] = Path(__file__).with_name(tool)
    for rel, content in bundle.files.items():
        folder = "model-code" if rel.startswith("code/") else "model-files"
        files[f"{folder}/{rel}"] = content
    manifest = json.dumps(bundle.manifest, indent=2, sort_keys=True) + "\n"
    files[f"model-files/{MANIFEST}"] = manifest.encode()
    return files


def _content(
    spec: DockerfileSpec, base_id: str, files: dict[str, Path | bytes], bundle: Bundle
) -> str:
    """The image's identity: what it serves, not when it was built (the manifest, which holds
    the build's time and provenance, is left out; the bundle's content digest stands for it)."""
    digests: dict[str, str | None] = {}
    for rel, content in sorted(files.items()):
        if rel.startswith("model-files/") or rel.startswith("model-code/"):
            continue  # the bundle's content digest covers them
        if rel.startswith("wheels/"):
            digests[rel] = rel  # a wheel's name holds its version; the lock's hashes pin it
        elif isinstance(content, bytes):
            digests[rel] = hash_bytes(content)
        else:
            digests[rel] = hash_regular_file(content)
    return hash_bytes(
        json.dumps([body(spec), base_id, digests, bundle.content_digest], sort_keys=True).encode()
    )


def _build(client: Any, dockerfile: str, files: dict[str, Path | bytes], network: str) -> str:
    import docker

    with _context(dockerfile, files) as context:
        try:
            stream = client.api.build(
                fileobj=context,
                custom_context=True,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                network_mode=network,
            )
            return _image_id(stream)
        except docker.errors.APIError as exc:
            raise DockerError(f"the image build failed: {exc.explanation}") from None


def _image_id(stream: Iterator[dict[str, Any]]) -> str:
    found: str | None = None
    lines: list[str] = []
    for chunk in stream:
        if "stream" in chunk:
            lines.extend(line for line in str(chunk["stream"]).splitlines() if line.strip())
            lines = lines[-30:]
        if "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            tail = "\n".join(lines[-15:])
            raise DockerError(f"the image build failed: {str(detail).strip()}\n{tail}")
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            found = str(aux["ID"])
    if found is None:
        raise DockerError("the image build ended without an image; see the engine's log")
    return found


@contextlib.contextmanager
def _context(dockerfile: str, files: dict[str, Path | bytes]) -> Iterator[IO[bytes]]:
    """The build context as a tar file: fixed times and owners, so the engine's cache keys
    depend on content only."""
    with tempfile.TemporaryFile() as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, "Dockerfile", dockerfile.encode(), 0o644)
            for rel in sorted(files):
                content = files[rel]
                if isinstance(content, bytes):
                    _add(tar, rel, content, 0o644)
                else:
                    with content.open("rb") as handle:
                        info = _info(rel, os.fstat(handle.fileno()).st_size, 0o644)
                        tar.addfile(info, handle)
        raw.seek(0)
        yield raw


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    import io

    tar.addfile(_info(name, len(data), mode), io.BytesIO(data))


def _info(name: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    return info
