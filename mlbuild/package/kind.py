"""The package kinds, in mlbuild's process: ``package-bundle`` writes the bundle, ``package-image``
builds the image, both through the same code as ``mlbuild package`` always used (gather the model
from the verified cache, then :mod:`.bundle` / :mod:`.image`).

Both pass the release gate first (``tests:``): a model whose tests did not pass for its exact
fingerprint is refused unless the run says ``--allow-failing-tests``, which the result and the
image's labels record.

An image lives on the Docker engine, not in the workspace: the cache entry holds its id, and
:meth:`ImageKind.revalidate` checks, before the entry is trusted, that the engine still holds the
image under its tag and that the base image is the one it was built on; otherwise the step runs
again (the engine's layer cache makes that quick) instead of reporting an id that is gone.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mlbuild.exec.context import KindContext
from mlbuild.exec.kinds import KindResult, StepStopped
from mlbuild.graph import Graph, StepSpec, Workspace

ALLOWED = "failing-allowed"  # the gate's state when --allow-failing-tests let a model through


class BundleKind:
    name: ClassVar[str] = "package-bundle"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        from mlbuild.package.bundle import write_archive, write_directory
        from mlbuild.package.gather import gather

        gate = _gate(ctx)
        gathered = gather(ctx.workspace, ctx.graph, store=None)
        rel = spec.config["bundle"]
        target = ctx.workspace.root / rel
        if rel.endswith((".tar.gz", ".tgz")):
            write_archive(gathered.bundle, target)
        else:
            write_directory(gathered.bundle, target)
        return KindResult(
            data={
                "bundle": rel,
                "model": gathered.provenance.model_name,
                "version": gathered.provenance.version,
                "content": gathered.bundle.content_digest,
                "files": len(gathered.bundle.files) + 1,
                "tests": gate,
            }
        )

    def describe(self, spec: StepSpec) -> str:
        return f"bundle model {spec.config['model']['name']} into {spec.config['bundle']}"

    def revalidate(
        self, spec: StepSpec, data: dict[str, Any], graph: Graph, workspace: Workspace
    ) -> str | None:
        return _gate_again(data, graph, workspace)


class ImageKind:
    name: ClassVar[str] = "package-image"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        from mlbuild.package.gather import gather
        from mlbuild.package.image import build_image

        labels = _gate_labels(ctx)
        gathered = gather(ctx.workspace, ctx.graph, store=None)
        if ctx.cancelled:
            raise StepStopped()
        image = build_image(
            ctx.workspace, ctx.graph, gathered, progress=ctx.note, extra_labels=labels
        )
        ctx.note(f"image {image.reference} ({image.image_id[:19]}), {image.size_mb:.0f} MB")
        return KindResult(
            data={
                **image.to_json(),
                "base": spec.config["docker"]["base"],
                "base_id": image.base_id,
                "model": gathered.provenance.model_name,
                "version": gathered.provenance.version,
                "tests": labels.get("dev.mlbuild.tests", "none"),
            }
        )

    def describe(self, spec: StepSpec) -> str:
        docker = spec.config["docker"]
        model = spec.config["model"]["name"]
        return f"build image {docker['image']} of model {model} on {docker['base']}"

    def revalidate(
        self, spec: StepSpec, data: dict[str, Any], graph: Graph, workspace: Workspace
    ) -> str | None:
        """Why the cached image no longer answers for this step, or None."""
        again = _gate_again(data, graph, workspace)
        if again is not None:
            return again
        from mlbuild.package.engine import image_state

        return image_state(
            str(data.get("reference", "")),
            str(data.get("image_id", "")),
            str(data.get("base", "")),
            str(data.get("base_id", "")),
        )


def _gate_labels(ctx: KindContext) -> dict[str, str]:
    from mlbuild.testing.gate import require_passing_tests

    gate = require_passing_tests(
        ctx.workspace, ctx.graph, action="package", allow_failing=ctx.graph.allow_failing_tests
    )
    if gate.allowed:
        ctx.note(f"warning: package with --allow-failing-tests: {gate.findings()}")
    return gate.labels()


def _gate(ctx: KindContext) -> str:
    from mlbuild.testing.gate import LABEL_PREFIX

    return _gate_labels(ctx).get(LABEL_PREFIX, "none")


def _gate_again(data: dict[str, Any], graph: Graph, workspace: Workspace) -> str | None:
    """Why the gate's answer the cached result was built under no longer holds, or None.

    The step's fingerprint holds the model's files and the tests' declarations, not what the
    tests judge beside the model (their tables, their code, the metrics a new evaluation
    wrote): so the gate is asked again, as it is before a build, and a package built when the
    tests passed is not reused once they fail (or were not run) for the model as it is now."""
    from mlbuild.errors import MlbuildError
    from mlbuild.testing.gate import check_tests

    if data.get("tests") == ALLOWED and not graph.allow_failing_tests:
        return "it was built with --allow-failing-tests; without it the release gate decides again"
    try:
        gate = check_tests(workspace, graph, action="package")
    except MlbuildError:
        return "the release gate must decide again"  # the build says why it cannot
    state = gate.state
    if not gate.ok:
        state = ALLOWED if graph.allow_failing_tests else "failing"
    if state != data.get("tests"):
        return f"its tests were {data.get('tests')} when it was built and are {state} now"
    return None
