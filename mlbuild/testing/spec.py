"""The recipe's tests, read from the compiled graph, with what each needs before it can run.

The graph holds each test as written (``Graph.tests``, paths checked and normalised). Here a test
learns what it reads — its files and ``deps``, the model, a step's recorded metrics — and so which
steps must be up to date first. The checks that need only the recipe run here and report every
problem at once, located in ``ml.yaml``: a metric test naming a step that records no metrics, a
test that runs the model when the recipe declares none, a file no step makes and that does not
exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.errors import Problem, RecipeError, UsageError
from mlbuild.graph import Graph
from mlbuild.params import suggest
from mlbuild.paths import overlaps
from mlbuild.testing.steps import MODEL_KINDS, STEP_SEPARATOR, step_name

TABLE_KEY = {
    "cases": "file",
    "invariance": "file",
    "directional": "file",
    "slices": "file",
    "latency": "file",
    "serving": "file",
}


@dataclass(frozen=True)
class CompiledTest:
    """One declared test: its kind and settings, what it reads, and the steps it waits for."""

    name: str
    kind: str
    config: dict[str, Any]
    files: list[str]  # workspace files and folders it reads (its table or folder, its deps)
    upstream: list[str]  # steps that must be up to date before it runs
    needs_model: bool
    metric_steps: list[str] = field(default_factory=list)  # steps whose metrics it reads
    metric_key: str | None = None

    @property
    def step_name(self) -> str:
        """Its step, as runs, reports and the cache name it: ``tests:accuracy``."""
        return step_name(self.name)

    @property
    def table(self) -> str | None:
        """The CSV or JSON Lines file it reads rows from, if any."""
        key = TABLE_KEY.get(self.kind)
        value = self.config.get(key) if key else None
        return value if isinstance(value, str) else None


def compile_tests(graph: Graph, root: Path, names: list[str] | None = None) -> list[CompiledTest]:
    """The tests ``names`` (all when None or empty) of ``graph``, in the recipe's order.

    Raises :class:`UsageError` for a name the recipe does not declare and
    :class:`RecipeError` listing every problem the recipe alone shows.
    """
    tests, problems = compile_each(graph, root, names)
    if problems:
        raise RecipeError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0)))
    return tests


def compile_each(
    graph: Graph, root: Path, names: list[str] | None = None
) -> tuple[list[CompiledTest], list[Problem]]:
    """Like :func:`compile_tests`, but returns the tests that compiled cleanly and the problems
    of the others, for ``validate`` to check the former further and report everything."""
    declared = list(graph.tests)
    for name in names or []:
        if name not in declared:
            raise UsageError(_unknown_test(name, declared))
    tests: list[CompiledTest] = []
    problems: list[Problem] = []
    for name in (n for n in declared if not names or n in names):
        found: list[Problem] = []
        test = _compile(graph, root, name, found)
        if found:
            problems += found
        else:
            tests.append(test)
    return tests, problems


def _compile(graph: Graph, root: Path, name: str, problems: list[Problem]) -> CompiledTest:
    config = graph.tests[name]
    kind = str(config["kind"])
    here = f"tests.{name}"
    files = [p for p in (config.get("file"), config.get("path")) if isinstance(p, str)]
    files += [d for d in config.get("deps", []) if isinstance(d, str)]
    upstream: list[str] = []
    for path in files:
        makers = [
            s.name for s in graph.steps.values() if any(overlaps(path, o.path) for o in s.outs)
        ]
        upstream += makers
        if not makers and not (root / path).exists():
            key = _path_key(config, path, here)
            problems.append(
                graph.problem(
                    key, f"'{path}' does not exist and no step makes it; create it or fix the path"
                )
            )
    table = config.get(TABLE_KEY.get(kind, ""))
    if isinstance(table, str) and Path(table).suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        problems.append(
            graph.problem(
                f"{here}.file",
                f"'{table}' is not a test table; expected a .csv file with a header row or a "
                ".jsonl file with one object per line",
            )
        )
    if kind == "serving" and config.get("target") == "bundle" and graph.package is None:
        problems.append(
            graph.problem(
                f"{here}.target",
                "a serving test of the bundle serves what `mlbuild package` makes, but the "
                "recipe has no package: section; add one (`package: {code: [src/]}`), or test "
                "the server (target: server)",
            )
        )
    needs_model = kind in MODEL_KINDS or (kind == "pytest" and graph.model is not None)
    if kind in MODEL_KINDS and graph.model is None:
        problems.append(
            graph.problem(
                f"{here}.kind",
                f"a {kind} test runs the model, but the recipe has no model: section; declare "
                "the model's artifacts, its flavor or class and its signature there",
            )
        )
    if needs_model and graph.model is not None:
        upstream += list(graph.model.producers(graph).values())
    metric_steps: list[str] = []
    metric_key = None
    if kind == "metric":
        metric_steps, metric_key = _metric_source(graph, name, str(config["metric"]), problems)
        upstream += metric_steps
    if kind == "pytest":
        # the `metrics` fixture gives what every step with metrics records
        upstream += [s.name for s in graph.steps.values() if s.metrics]
    order = list(graph.steps)
    return CompiledTest(
        name=name,
        kind=kind,
        config=config,
        files=files,
        upstream=sorted(set(upstream), key=order.index),
        needs_model=needs_model,
        metric_steps=metric_steps,
        metric_key=metric_key,
    )


def _metric_source(
    graph: Graph, name: str, metric: str, problems: list[Problem]
) -> tuple[list[str], str]:
    """The steps whose recorded metrics may hold ``metric``, and the key within them."""
    key_path = f"tests.{name}.metric"
    recording = [s.name for s in graph.steps.values() if s.metrics]
    step, sep, key = metric.partition(STEP_SEPARATOR)
    if not sep:
        if not recording:
            problems.append(
                graph.problem(
                    key_path,
                    f"no step records metrics, so none records '{metric}'; list the file a step "
                    "writes its metrics to in that step's metrics:",
                )
            )
        return recording, metric
    if step not in graph.steps:
        problems.append(
            graph.problem(
                key_path,
                f"no step named '{step}'{suggest(step, list(graph.steps))}; steps that record "
                f"metrics: {', '.join(recording) or 'none'}",
            )
        )
    elif step not in recording:
        problems.append(
            graph.problem(
                key_path,
                f"step '{step}' records no metrics (it has no metrics: files), so it cannot "
                f"record '{key}'; steps that record metrics: {', '.join(recording) or 'none'}",
            )
        )
    return [step] if step in recording else [], key


def _path_key(config: dict[str, Any], path: str, here: str) -> str:
    for key in ("file", "path"):
        if config.get(key) == path:
            return f"{here}.{key}"
    deps = config.get("deps", [])
    return f"{here}.deps[{deps.index(path)}]" if path in deps else here


class BadTestInputError(RecipeError):
    """Problems in the tests' inputs — the recipe's tests section and the files it names."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        files = sorted({p.file for p in problems})
        count = len(problems)
        self.message = "\n".join(
            [
                *(p.render() for p in problems),
                f"{count} problem{'s' if count != 1 else ''} in {', '.join(files)}; no test ran",
            ]
        )


def _unknown_test(name: str, declared: list[str]) -> str:
    if not declared:
        return f"no test named '{name}': the recipe declares no tests (see `tests:` in the README)"
    return f"no test named '{name}'{suggest(name, declared)}; tests: {', '.join(declared)}"
