"""The ``model-check`` kind, in mlbuild's process: gather the model from the verified cache, then
run :mod:`mlbuild.serve.check.child` on the step's executor, and keep what it found.

The artifacts are the bytes the step's fingerprint holds (its deps' digests), copied out of the
cache into ``.mlbuild/serving/`` and verified on the way, as ``mlbuild serve`` does; the child
hashes them again before anything is unpickled. Nothing here imports numpy or the model's code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from mlbuild import atomic
from mlbuild.cache import CorruptObjectError, MissingObjectError
from mlbuild.exec.context import KindContext
from mlbuild.exec.kinds import KindResult, StepFailure
from mlbuild.graph import StepSpec
from mlbuild.paths import is_within
from mlbuild.serve.check import STEP
from mlbuild.serve.resolve import ModelSource, materialise, model_version

SHOWN_ROWS = 20  # predictions kept with the step's result; the output file has them all


class ModelCheckKind:
    name: ClassVar[str] = "model-check"

    def execute(self, spec: StepSpec, ctx: KindContext) -> KindResult:
        config = spec.config
        files = {path: self._copy(ctx, path) for path in _cached_files(config)}
        signature = _signature(config, files)
        digests = {name: ctx.dep_digest(path) for name, path in config["artifacts"].items()}
        source = ModelSource(
            name=config["model"],
            version=model_version(digests, signature),
            root=str(ctx.workspace.root),
            flavor=config["flavor"],
            class_ref=config["class"],
            artifacts={name: files[path] for name, path in config["artifacts"].items()},
            signature=signature,
            digests=digests,
        )
        folder = ctx.workspace.meta / "checks" / spec.name.replace(":", "-")
        result_path = folder / "result.json"
        result_path.unlink(missing_ok=True)
        request = {
            "source": source.to_json(),
            "sample": config["sample"],
            "output": config["output"],
            "result": str(result_path),
            "shown": SHOWN_ROWS,
        }
        request_path = folder / "request.json"
        atomic.write_json(request_path, request, sync=False)
        argv = [sys.executable, "-m", "mlbuild.serve.check.child", str(request_path)]
        try:
            run = ctx.run_process(argv, what="the model check")
        except StepFailure as exc:
            error = _read(result_path).get("error")
            if not isinstance(error, str):
                raise
            raise StepFailure(
                f"model check failed: {error}", log=exc.log, duration=exc.duration
            ) from None
        data = _read(result_path)
        if "rows" not in data:
            raise StepFailure("the model check wrote no result", log=ctx.log)
        return KindResult(data=data, duration=run.duration)

    def describe(self, spec: StepSpec) -> str:
        config = spec.config
        on = f" on {config['sample']}" if config.get("sample") else " (loading only)"
        return f"check model {config['model']}{on}"

    def _copy(self, ctx: KindContext, path: str) -> str:
        """A verified copy of dep ``path`` from the cache, for the child to load."""
        digest = ctx.dep_digest(path)
        try:
            return str(materialise(ctx.workspace, digest, None, PurePosixPath(path).name))
        except (MissingObjectError, CorruptObjectError) as exc:
            producer = _producer(ctx, path)
            fix = f"make it again with `mlbuild run --force {producer}`" if producer else ""
            raise StepFailure(
                f"model artifact {path}: the cached copy is unusable ({exc.message}); the check "
                f"loads only the bytes the step produced{'; ' + fix if fix else ''}"
            ) from None


def _cached_files(config: dict[str, Any]) -> list[str]:
    files = list(dict.fromkeys(config["artifacts"].values()))
    if config["signature_file"] is not None:
        files.append(config["signature_file"])
    return files


def _signature(config: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    if config["signature_file"] is None:
        inline: dict[str, Any] = config["signature"]
        return inline
    try:
        loaded = json.loads(Path(files[config["signature_file"]]).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepFailure(f"model signature {config['signature_file']}: not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise StepFailure(f"model signature {config['signature_file']}: expected a JSON object")
    return loaded


def _producer(ctx: KindContext, path: str) -> str | None:
    """The step whose outputs hold ``path``."""
    step = ctx.graph.steps.get(STEP)
    for upstream in step.upstream if step else []:
        if any(is_within(path, o.path) for o in ctx.graph.steps[upstream].outs):
            return upstream
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
