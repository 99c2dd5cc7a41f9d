"""``tests:`` → one step per declared test, ``tests:NAME`` of kind ``model-test``.

A test is a step like any other, so the engine's fingerprint, action cache, ``plan`` reasons,
run record, remote cache and ``--keep-going`` apply to it. Its deps are what its verdict depends
on, as files the engine hashes:

::

    the model ───────── its artifacts and signature file (step outputs: the steps that make them
                        run first), the servable's code (the folder of ``model.class``)
    the test's files ── its table (``file``), its pytest folder (``path``), its ``deps``
    metrics ─────────── the metrics files of the steps whose metrics it reads

and its ``config`` is its declaration (without ``description``: words, not behaviour) plus what
the model is, so ``plan`` says ``config.min changed`` or ``dep models/model.pkl changed``.

A test's step is not among the steps a ``run`` that names none brings up to date (as ``bazel
build`` does not run tests): a scientist's ``mlbuild run model=tree`` stays fast and is not failed
by a release gate; ``mlbuild test`` runs them, and ``mlbuild run tests:golden`` (or any target
list that names them) runs them like any step, a failing one failing the run unless
``--keep-going``. A
metric test compared with a baseline reads the run store (the version under an alias), which no
file holds: it runs every time (``always_run``).

Paths are checked, and their problems reported, where the graph compiles the ``tests:`` section
as data (:func:`mlbuild.graph.build`); here a path the workspace's fence refuses is only left
out (it is reported there, once). Nothing heavy is
imported: this runs on every recipe change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar

from mlbuild.graph.kinds import CompileContext
from mlbuild.graph.model import StepSpec
from mlbuild.paths import UnsafePathError

if TYPE_CHECKING:
    from mlbuild.recipe import KeyPath, Recipe

SECTION = "tests"
KIND = "model-test"
TEST_PREFIX = f"{SECTION}:"  # a test's step name: `tests:golden`; no user step has a ':'
TEST_FORMAT = 2  # bumped when what a verdict means changes, so no older verdict is trusted
STEP_SEPARATOR = "/"  # `evaluate/accuracy`, as runs record a key several steps report
# kinds that call the model (all but a metric's bounds); pytest does when there is a model
MODEL_KINDS = ("cases", "invariance", "directional", "slices", "latency", "serving")


Normal = Callable[[str], "str | None"]  # a recipe path → its normal form, None when refused


def step_name(test: str) -> str:
    """``golden`` → ``tests:golden``."""
    return f"{TEST_PREFIX}{test}"


def test_name(step: str) -> str | None:
    """``tests:golden`` → ``golden``; None for a step that is no test."""
    return step[len(TEST_PREFIX) :] if step.startswith(TEST_PREFIX) else None


class TestSteps:
    """``tests:`` → a step ``tests:NAME`` for each declared test."""

    __test__ = False  # not a pytest class, whatever its name
    section: ClassVar[str] = SECTION

    def compile(self, value: dict[str, Any], ctx: CompileContext) -> list[StepSpec]:
        recipe = ctx.recipe
        fence = ctx.paths.fence

        def _normal(raw: str) -> str | None:
            try:
                return fence.check(raw, writes=False)
            except UnsafePathError:
                return None

        servable = _servable(recipe, _normal)
        metrics = _metrics_files(recipe, _normal)
        specs = []
        for name, test in value.items():
            declared = test.model_dump(mode="json", exclude={"description"})
            kind = str(declared["kind"])
            needs_model = kind in MODEL_KINDS or (kind == "pytest" and servable is not None)
            deps: list[str | None] = []
            for key in ("file", "path"):
                if isinstance(declared.get(key), str):
                    declared[key] = _normal(declared[key])
                    deps.append(declared[key])
            declared["deps"] = [_normal(d) for d in declared["deps"]]
            deps += declared["deps"]
            if needs_model and servable is not None:
                deps += servable["files"]
            if declared.get("target") == "bundle" and recipe.package is not None:
                # what the bundle holds beyond the model: its code (and the lock, hashed with
                # every step's fingerprint already)
                deps += [_normal(c) for c in recipe.package.code or []]
            if kind == "metric":
                deps += _metric_deps(str(declared["metric"]), metrics)
            elif kind == "pytest":  # its `metrics` fixture gives what every step records
                deps += [f for files in metrics.values() for f in files]
            config: dict[str, Any] = {
                **declared,
                "format": TEST_FORMAT,
                "servable": servable["model"] if needs_model and servable else None,
            }
            specs.append(
                StepSpec(
                    name=step_name(name),
                    kind=KIND,
                    config=config,
                    deps=sorted({d for d in deps if d is not None}),
                    outs=[],
                    params={},
                    metrics=[],
                    env={},
                    secrets=[],
                    needs=[],
                    always_run=kind == "metric" and declared.get("baseline") is not None,
                    timeout=None,  # a kind keeps its own budgets (pytest's `timeout:`)
                    upstream=[],
                    default=False,  # `mlbuild test` or `mlbuild run tests:NAME` runs it
                )
            )
        return specs

    def declared_at(self, spec: StepSpec) -> KeyPath:
        return (SECTION, spec.name[len(TEST_PREFIX) :])


def _servable(recipe: Recipe, _normal: Normal) -> dict[str, Any] | None:
    """The model the tests run — its files (deps) and what identifies it (config) — or None."""
    model = recipe.model
    if model is None:
        return None
    artifacts = {name: _normal(raw) for name, raw in model.artifacts.items()}
    files: list[str | None] = list(artifacts.values())
    signature_file = _normal(model.signature) if isinstance(model.signature, str) else None
    files.append(signature_file)
    class_ref = None
    if model.class_ is not None:
        file, _, attr = model.class_.rpartition(":")
        class_file = _normal(file)
        class_ref = f"{class_file}:{attr}"
        folder = str(PurePosixPath(class_file).parent) if class_file else "."
        # the servable's code: the class's folder (what it imports lives there), or its file
        # when it sits at the workspace root, which cannot be a dep
        files.append(class_file if folder == "." else folder)
    identity = {
        "name": model.name or recipe.name,
        "artifacts": artifacts,
        "flavor": model.flavor,
        "class": class_ref,
        "signature": None if isinstance(model.signature, str) else model.signature.model_dump(),
        "signature_file": signature_file,
    }
    return {"files": files, "model": identity}


def _metrics_files(recipe: Recipe, _normal: Normal) -> dict[str, list[str]]:
    """Each user step that records metrics → its metrics files."""
    found: dict[str, list[str]] = {}
    for name, step in recipe.steps.items():
        files = [n for n in (_normal(m) for m in step.metrics) if n is not None]
        if files:
            found[name] = files
    return found


def _metric_deps(metric: str, metrics: dict[str, list[str]]) -> list[str]:
    """The metrics files that may hold ``metric`` (``step/key``: that step's; ``key``: all)."""
    step, sep, _ = metric.partition(STEP_SEPARATOR)
    if sep:
        return metrics.get(step, [])
    return [f for files in metrics.values() for f in files]
