"""``package:`` → the steps ``package:bundle`` and ``package:docker`` (no heavy import here).

Image builds are steps (issue 12): each target of the section becomes a step whose deps are the
model's artifacts, its signature file and the servable code, and whose ``config`` is the package
declaration with everything else that decides what it makes — the model's settings, the tests it
is gated on, mlbuild's version (its modules are in the image). The lock's hash is in every
step's fingerprint already. So ``mlbuild run package:docker`` is answered from the action cache
when nothing changed, ``plan`` names what did (``dep model/model.joblib changed``,
``config.docker.base changed``), and ``mlbuild package`` is a view over the same steps.

The steps are not among ``run``'s default targets (:attr:`StepSpec.default` is false): ``mlbuild
run`` trains and evaluates; packaging is asked for by name (``mlbuild run package:docker``) or by
``mlbuild package``, as ``docker build`` is never a side effect of ``make``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from mlbuild.graph.kinds import CompileContext
from mlbuild.graph.model import Output, StepSpec
from mlbuild.paths import UnsafePathError, normalise

if TYPE_CHECKING:
    from mlbuild.recipe import KeyPath, PackageSection

BUNDLE_STEP = "package:bundle"
IMAGE_STEP = "package:docker"
BUNDLE_KIND = "package-bundle"
IMAGE_KIND = "package-image"
# bumped when what a package step makes changes, so every cached one is built again
PACKAGE_VERSION = 1


class PackageSteps:
    """``package:`` → one step per declared target; none without a ``model:`` section (the
    recipe's own check reports that the package has no model)."""

    section: ClassVar[str] = "package"

    def compile(self, value: PackageSection, ctx: CompileContext) -> list[StepSpec]:
        from mlbuild import __version__

        # the bundle is this step's output: checked here, so a clash with another step's
        # output is reported like any two producers of one path
        bundle = None
        if value.bundle is not None:
            bundle = ctx.paths.check(value.bundle, ("package", "bundle"), writes=True)
        model = ctx.recipe.model
        if model is None:
            return []
        # the paths are checked (and their problems reported) with the package and model
        # sections themselves: only their normal form is taken here
        artifacts = {name: _normal(raw) for name, raw in model.artifacts.items()}
        signature_file = _normal(model.signature) if isinstance(model.signature, str) else None
        class_file = _normal(model.class_.rpartition(":")[0]) if model.class_ else None
        if value.code is not None:
            code = [_normal(raw) for raw in value.code]
        elif class_file is not None:
            folder = str(PurePosixPath(class_file).parent)
            code = [class_file if folder == "." else folder]
        else:
            code = []
        deps = sorted({p for p in [*artifacts.values(), signature_file, *code] if p is not None})
        common: dict[str, Any] = {
            "version": PACKAGE_VERSION,
            "mlbuild": __version__,
            "model": {
                "name": model.name or ctx.recipe.name,
                "artifacts": artifacts,
                "flavor": model.flavor,
                "class": model.class_,
                "signature": None
                if isinstance(model.signature, str)
                else model.signature.model_dump(),
            },
            "code": code,
            # the release gate: a test added or changed decides again whether this may ship
            "tests": {name: t.model_dump(mode="json") for name, t in ctx.recipe.tests.items()},
        }
        steps = []
        if value.bundle is not None:
            outs = [Output(bundle)] if bundle is not None else []
            steps.append(_step(BUNDLE_STEP, BUNDLE_KIND, {**common, "bundle": bundle}, deps, outs))
        if value.docker is not None:
            config = {**common, "docker": value.docker.model_dump(mode="json")}
            steps.append(_step(IMAGE_STEP, IMAGE_KIND, config, deps, []))
        return steps

    def declared_at(self, spec: StepSpec) -> KeyPath:
        # the bundle's path is found under ("package",) by RecipePaths.key_of
        return ("package",) if spec.name == BUNDLE_STEP else ("package", "docker")


def _step(
    name: str, kind: str, config: dict[str, Any], deps: list[str], outs: list[Output]
) -> StepSpec:
    return StepSpec(
        name=name,
        kind=kind,
        config=config,
        deps=deps,
        outs=outs,
        params={},
        metrics=[],
        env={},
        secrets=[],
        needs=[],
        always_run=False,
        timeout=None,
        upstream=[],
        default=False,
    )


def _normal(raw: str) -> str | None:
    try:
        return normalise(raw)
    except UnsafePathError:
        return None
