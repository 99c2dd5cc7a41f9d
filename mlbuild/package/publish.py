"""``mlbuild publish``: build the image of a registered model version, smoke-test it, and push it
to the registry tagged with the version number — once.

A tag is an immutable version: when the registry already holds ``IMAGE:VERSION``, its
``dev.mlbuild.content`` label is compared with the new build's; the same content is a no-op (the
digest already there is the answer), other content is refused and nothing is pushed. The smoke
test runs before the push, so an image that does not serve never reaches the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlbuild.package.errors import RegistryError


@dataclass(frozen=True)
class Published:
    registry: str
    repository: str
    tag: str
    digest: str
    unchanged: bool  # the registry held this content under the tag already
    smoke_rows: int

    @property
    def reference(self) -> str:
        """The image by digest: what a deployment pulls."""
        return f"{self.registry}/{self.repository}@{self.digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "reference": self.reference,
            "unchanged": self.unchanged,
            "smoke_rows": self.smoke_rows,
        }


def publish(
    ws: Any,
    graph: Any,
    gathered: Any,
    *,
    progress: Callable[[str], None],
    extra_labels: Mapping[str, str] | None = None,
) -> Published:
    from mlbuild.package.engine import connect
    from mlbuild.package.image import CONTENT_LABEL, build_image
    from mlbuild.package.registry import RegistryClient, push
    from mlbuild.package.smoke import expected_predictions, sample_for, smoke_test

    docker = graph.package.docker
    registry = docker.registry
    tag = gathered.provenance.version
    reader = RegistryClient(registry)
    existing = reader.tagged(docker.image, tag)  # early: an unreachable registry fails fast
    # tagged IMAGE:VERSION only once it may be that version: not when the registry refuses it
    image = build_image(
        ws, graph, gathered, progress=progress, tag=False, extra_labels=extra_labels
    )
    client = connect()
    if existing is not None:
        if existing.labels.get(CONTENT_LABEL) == image.content:
            client.images.get(image.image_id).tag(docker.image, tag)
            return Published(registry, docker.image, tag, existing.digest, True, 0)
        raise RegistryError(
            f"{registry}/{docker.image}:{tag} already holds another image (content "
            f"{existing.labels.get(CONTENT_LABEL, 'unknown')[:12]}, this build "
            f"{image.content[:12]}); a published version is never overwritten: register the "
            f"model again (`mlbuild model register RUN --name {gathered.provenance.model_name}`) "
            "and publish the new version"
        )
    sample = sample_for(ws.root, graph.package.sample, gathered.source.signature)
    expected = expected_predictions(gathered.source, sample)
    progress(f"smoke test: starting {image.reference}, sending {sample.rows} rows")
    result = smoke_test(client, image.image_id, docker.port, sample, expected)
    progress(
        f"smoke test passed: ready in {result.ready_seconds:.1f} s, {result.rows} rows predicted "
        "as in-process"
    )
    client.images.get(image.image_id).tag(docker.image, tag)  # before the push drops its tag
    progress(f"pushing {registry}/{docker.image}:{tag}")
    digest = push(client, image.image_id, registry, docker.image, tag)
    return Published(registry, docker.image, tag, digest, False, result.rows)
