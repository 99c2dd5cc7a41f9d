"""Find the model the recipe's current outputs hold, in the cache, and materialise its files.

The planner decides, as ``mlbuild plan`` would, whether the steps that write the model's artifacts
are up to date for the current recipe and params. If one would run, serving refuses and says which
command builds it. Otherwise every artifact is taken from the step's cached result — never from
the workspace copy, which may have been edited — and copied once into ``.mlbuild/serving/``, named
by its content hash. The model's version is the hash of its artifacts and signature.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.cache import DIR_SUFFIX, ActionResult, hash_bytes
from mlbuild.errors import MlbuildError, UsageError
from mlbuild.graph import Action, Graph, Workspace, make_plan
from mlbuild.paths import is_within


class NotBuiltError(MlbuildError):
    """The model's steps have not run for the current recipe and params."""


@dataclass(frozen=True)
class ModelSource:
    """Everything a server process needs to load the model (plain data, written as JSON)."""

    name: str
    version: str
    root: str
    flavor: str | None
    class_ref: str | None
    artifacts: dict[str, str]  # artifact name → a file materialised from the cache
    signature: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelSource:
        return cls(**raw)


def resolve_model(ws: Workspace, graph: Graph) -> ModelSource:
    """The model of ``graph`` as its steps' cached results hold it.

    Raises :class:`UsageError` when the recipe has no ``model:`` section and
    :class:`NotBuiltError` when a step that writes an artifact would have to run first.
    """
    model = graph.model
    if model is None:
        raise UsageError(
            f"{graph.recipe_file} has no model: section; declare the model's artifacts, its "
            "flavor or class and its signature there (see `mlbuild schema`)"
        )
    producers = model.producers(graph)
    steps = sorted(set(producers.values()), key=list(graph.steps).index)
    decisions = {d.step: d for d in make_plan(ws.planner(graph), graph.upstream_closure(steps))}
    for step in steps:
        decision = decisions[step]
        if decision.action in (Action.RUN, Action.PENDING) or decision.result is None:
            overrides = "".join(f" {o}" for o in graph.overrides)
            why = "; ".join(decision.reasons) or "not run yet"
            raise NotBuiltError(
                f"the model is not built for the current recipe and params: step '{step}' "
                f"would run ({why}); run `mlbuild run {step}{overrides}` first"
            )
    store = ws.meta / "serving" / "objects"
    files: dict[str, str] = {}
    digests: dict[str, str] = {}
    for path, step in producers.items():
        result = decisions[step].result
        assert result is not None
        digest = _digest_of(ws, result, path, step)
        digests[path] = digest
        files[path] = str(_materialise(ws, digest, store, PurePosixPath(path).name))
    if model.signature_file is not None:
        signature = json.loads(Path(files[model.signature_file]).read_text(encoding="utf-8"))
    else:
        assert model.signature is not None
        signature = model.signature
    artifacts = {name: files[path] for name, path in model.artifacts.items()}
    version = hash_bytes(
        json.dumps(
            [sorted((n, digests[p]) for n, p in model.artifacts.items()), signature]
        ).encode()
    )[:12]
    return ModelSource(
        name=model.name,
        version=version,
        root=str(ws.root),
        flavor=model.flavor,
        class_ref=model.class_ref,
        artifacts=artifacts,
        signature=signature,
    )


def _digest_of(ws: Workspace, result: ActionResult, path: str, step: str) -> str:
    """The content digest of ``path``: an output of ``result``, or a file inside one."""
    for out, record in result.outs.items():
        if not is_within(path, out):
            continue
        if not record.cached:
            raise UsageError(
                f"model artifact {path} is an output of step '{step}' with cache: false; "
                "mlbuild serves only cached artifacts, so remove `cache: false` from it"
            )
        if path == out:
            return record.digest
        relpath = path[len(out) + 1 :]
        for entry in ws.cache.objects.read_manifest(record.digest):
            if entry.relpath == relpath:
                return entry.digest
        raise UsageError(
            f"model artifact {path} is not in the output {out} that step '{step}' wrote; "
            "check the path in model.artifacts"
        )
    raise UsageError(f"model artifact {path} is not among the outputs of step '{step}'")


def _materialise(ws: Workspace, digest: str, store: Path, filename: str) -> Path:
    """A read-only copy of object ``digest`` under ``store``, made once, named ``filename``."""
    folder = store / digest
    target = folder / filename
    if target.exists():
        return target
    if digest.endswith(DIR_SUFFIX):
        raise UsageError(f"model artifact {filename} is a directory; name a file inside it")
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        ws.cache.objects.restore(digest, tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)  # atomic: a concurrent server sees all of it or none
    finally:
        tmp.unlink(missing_ok=True)
    return target
