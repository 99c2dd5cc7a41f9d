"""``model.check`` → the step ``model:check`` (see :mod:`mlbuild.serve.check`)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from mlbuild.graph.kinds import CompileContext
from mlbuild.graph.model import Output, StepSpec
from mlbuild.paths import UnsafePathError, normalise
from mlbuild.serve.check import CHECK_VERSION, KIND, STEP

if TYPE_CHECKING:
    from mlbuild.recipe import KeyPath, ServingModel


class ModelCheckSteps:
    """``model:`` → the step ``model:check`` when ``model.check`` is given, else nothing."""

    section: ClassVar[str] = "model"

    def compile(self, value: ServingModel, ctx: CompileContext) -> list[StepSpec]:
        from mlbuild.recipe import parse_duration

        check = value.check
        if check is None:
            return []
        here: KeyPath = ("model", "check")
        # the artifacts, the signature file and the class's file are checked (and their
        # problems reported) with the model section itself: only their normal form is taken here
        artifacts = {name: _normal(raw) for name, raw in value.artifacts.items()}
        signature_file = _normal(value.signature) if isinstance(value.signature, str) else None
        class_file = _normal(value.class_.rpartition(":")[0]) if value.class_ else None
        sample = None
        if check.sample is not None:
            sample = ctx.paths.check(check.sample, (*here, "sample"), writes=False)
        outs = []
        if check.output is not None:
            output = ctx.paths.check(check.output, (*here, "output"), writes=True)
            if output is not None:
                outs.append(Output(output))
                if sample is not None and _format(sample) != _format(output):
                    ctx.problem(
                        (*here, "output"),
                        f"the predictions are written in the sample's format; name the file "
                        f"{PurePosixPath(output).stem}.{_format(sample)} (the sample is {sample})",
                    )
        extra = [
            ctx.paths.check(raw, (*here, "deps", i), writes=False)
            for i, raw in enumerate(check.deps)
        ]
        deps = [*artifacts.values(), signature_file, class_file, sample, *extra]
        config: dict[str, Any] = {
            "version": CHECK_VERSION,
            "model": value.name or ctx.recipe.name,
            "artifacts": artifacts,
            "flavor": value.flavor,
            "class": f"{class_file}:{value.class_.rpartition(':')[2]}" if value.class_ else None,
            "signature": None if isinstance(value.signature, str) else value.signature.model_dump(),
            "signature_file": signature_file,
            "sample": sample,
            "output": outs[0].path if outs else None,
        }
        spec = StepSpec(
            name=STEP,
            kind=KIND,
            config=config,
            deps=sorted({d for d in deps if d is not None}),
            outs=outs,
            params={},
            metrics=[],
            env={},
            secrets=[],
            needs=[],
            always_run=False,
            timeout=parse_duration(check.timeout) if check.timeout is not None else None,
            upstream=[],
        )
        return [spec]

    def declared_at(self, spec: StepSpec) -> KeyPath:
        return ("model", "check")


def _normal(raw: str) -> str | None:
    try:
        return normalise(raw)
    except UnsafePathError:
        return None


def _format(path: str) -> str:
    """``csv`` or ``jsonl`` (``.ndjson`` is JSON Lines too)."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"
