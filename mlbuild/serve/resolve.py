"""Find the model the recipe's current outputs hold, in the cache, and materialise its files.

The planner decides, as ``mlbuild plan`` would, whether the steps that write the model's artifacts
are up to date for the current recipe and params. If one would run, serving refuses and says which
command builds it. Otherwise every artifact is taken from the step's cached result — never from
the workspace copy, which may have been edited — copied into ``.mlbuild/serving/`` (verified
against its digest as it is copied), named by its content hash. The model's version is the hash of
its artifacts and signature.

Loading a pickle runs code, so the serving copy is hashed again each time it is loaded
(:func:`verify_artifacts`, called by the runtime before anything is unpickled): a file swapped
into ``.mlbuild/serving/`` is moved to ``.mlbuild/serving/quarantine/`` and replaced from the
cache by the next ``serve`` or ``predict``, never loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.cache import (
    DIR_SUFFIX,
    ActionResult,
    CorruptObjectError,
    MissingObjectError,
    NotAnOutputError,
    NotInOutputError,
    UncachedOutputError,
    UnusableOutputError,
    hash_bytes,
    hash_regular_file,
    locate,
    move_aside,
)
from mlbuild.errors import CacheError, MlbuildError, UsageError
from mlbuild.graph import Action, Graph, Workspace, make_plan
from mlbuild.paths import META_DIR


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
    digests: dict[str, str] = field(default_factory=dict)  # artifact name → its content digest

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
    files: dict[str, str] = {}
    digests: dict[str, str] = {}
    for path, step in producers.items():
        result = decisions[step].result
        assert result is not None
        digest, size = _digest_of(ws, result, path, step)
        digests[path] = digest
        try:
            files[path] = str(materialise(ws, digest, size, PurePosixPath(path).name))
        except (MissingObjectError, CorruptObjectError) as exc:
            raise CacheError(
                f"model artifact {path}: the cached copy step '{step}' made is unusable "
                f"({exc.message}); serving takes only the bytes the step produced, so make them "
                f"again with `mlbuild run --force {step}`"
            ) from None
    if model.signature_file is not None:
        signature = json.loads(Path(files[model.signature_file]).read_text(encoding="utf-8"))
    else:
        assert model.signature is not None
        signature = model.signature
    artifacts = {name: files[path] for name, path in model.artifacts.items()}
    version = model_version({n: digests[p] for n, p in model.artifacts.items()}, signature)
    return ModelSource(
        name=model.name,
        version=version,
        root=str(ws.root),
        flavor=model.flavor,
        class_ref=model.class_ref,
        artifacts=artifacts,
        signature=signature,
        digests={name: digests[path] for name, path in model.artifacts.items()},
    )


def model_version(digests: dict[str, str], signature: dict[str, Any]) -> str:
    """The model's version: a hash of its artifacts' digests (by name) and its signature."""
    return hash_bytes(json.dumps([sorted(digests.items()), signature]).encode())[:12]


def verify_artifacts(source: ModelSource) -> None:
    """Hash every artifact file of ``source`` again, just before it is loaded.

    A file whose bytes are not the ones the step produced (swapped or altered since it was
    copied from the cache) is moved to quarantine and :class:`CacheError` is raised: it is never
    loaded.
    """
    for name, path in source.artifacts.items():
        expected = source.digests.get(name)
        if expected is not None and hash_regular_file(Path(path)) == expected:
            continue
        moved = move_aside(Path(path), _serving(Path(source.root)) / "quarantine", name)
        where = f"; it was moved to {moved}" if moved is not None else ""
        raise CacheError(
            f"model artifact '{name}' at {path} is not the file the step produced (its content "
            f"does not hash to {str(expected)[:12]}){where} and was not loaded; run the command "
            "again to copy the artifact from the cache"
        )


def _digest_of(ws: Workspace, result: ActionResult, path: str, step: str) -> tuple[str, int]:
    """The content digest and size of ``path``: an output of ``result``, or a file inside one."""
    try:
        found = locate(ws.cache.objects, result.outs, path)
    except UncachedOutputError:
        raise UsageError(
            f"model artifact {path} is an output of step '{step}' with cache: false; "
            "mlbuild serves only cached artifacts, so remove `cache: false` from it"
        ) from None
    except UnusableOutputError as exc:
        raise CacheError(
            f"model artifact {path}: the cached output {exc.out} of step '{step}' is unusable "
            f"({exc.cause.message}); make it again with `mlbuild run --force {step}`"
        ) from None
    except NotInOutputError as exc:
        raise UsageError(
            f"model artifact {path} is not in the output {exc.out} that step '{step}' wrote; "
            "check the path in model.artifacts"
        ) from None
    except NotAnOutputError:
        raise UsageError(
            f"model artifact {path} is not among the outputs of step '{step}'"
        ) from None
    return found.digest, found.size


def materialise(ws: Workspace, digest: str, size: int | None, filename: str) -> Path:
    """A read-only copy of object ``digest`` under ``.mlbuild/serving/objects/``, named
    ``filename``: kept if it still hashes to ``digest``, else quarantined and copied again."""
    if digest.endswith(DIR_SUFFIX):
        raise UsageError(f"model artifact {filename} is a directory; name a file inside it")
    serving = _serving(ws.root)
    target = serving / "objects" / digest / filename
    if os.path.lexists(target):
        if hash_regular_file(target) == digest:
            return target
        move_aside(target, serving / "quarantine", filename)
    ws.cache.objects.restore(digest, target, size)  # verified as it is copied; atomic
    os.chmod(target, 0o444)
    return target


def _serving(root: Path) -> Path:
    return root / META_DIR / "serving"
