"""The compiled pipeline: resolved steps in dependency order, plain data that serialises to JSON.

A :class:`Graph` is what the engine works on. It is derived from the recipe and the composed params
and cached (``compiled.py``), so a no-op run needs neither pydantic nor Hydra.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from mlbuild.data import DatasetSpec
from mlbuild.errors import Problem
from mlbuild.graph.packaging import PackageSpec
from mlbuild.paths import Fence, PathIndex


@dataclass(frozen=True)
class Output:
    path: str
    cache: bool = True
    persist: bool = False
    dvc: bool = False


@dataclass(frozen=True)
class PathUse:
    """One path of the recipe, where it is written (``steps.a.outs[0]``) and whether the engine
    writes or removes it; re-checked every time the graph is used, since the filesystem moves."""

    key: str
    path: str
    writes: bool


COMMAND = "command"  # the kind of the steps under `steps:`


@dataclass(frozen=True)
class StepSpec:
    """One step, resolved: normalised paths, selected params, and its kind's own settings.

    ``kind`` names how it executes (:mod:`mlbuild.exec.kinds`): ``command`` for the steps under
    ``steps:``, ``model-check`` for the model's servable check, later search, tests, packaging.
    ``config`` is the kind's JSON settings — ``{"cmd": ...}`` for a command, interpolated — and
    enters the fingerprint whole, so ``plan`` names a changed key (``config.sample changed``).
    Steps a section other than ``steps:`` makes are named ``SECTION:NAME`` (``model:check``),
    which no user step can be.
    """

    name: str
    kind: str
    config: dict[str, Any]
    deps: list[str]
    outs: list[Output]
    params: dict[str, Any]
    metrics: list[str]
    env: dict[str, str]
    secrets: list[str]
    needs: list[str]
    always_run: bool
    timeout: float | None
    upstream: list[str]  # steps that must finish first: producers of deps, and needs
    data: list[str] = field(default_factory=list)  # datasets it reads (named or by path)
    # what keeps this step from running, found when compiling (a param that does not resolve, a
    # Hydra config file it reads itself under overrides): [recipe key path, message]
    problems: list[list[str]] = field(default_factory=list)
    # environment variables its params were resolved from (``${oc.env:VAR}``) → their values'
    # hashes (None: unset); part of its fingerprint, so plan can say "env var VAR changed"
    env_vars: dict[str, str | None] = field(default_factory=dict)
    executor: str = "local"  # where its process runs (mlbuild.exec.executor.EXECUTORS)
    # ``params_from: search.NAME``: the search's name, and the best params it found (flat keys →
    # values), which are in ``params`` too; part of its fingerprint, so plan can say "best params
    # of search `hpo` changed"
    params_from: str | None = None
    best: dict[str, Any] | None = None
    # whether `run` with no target runs it: false for the tests' steps (run them with `mlbuild
    # test`, or by name), as `bazel build` builds and `bazel test` tests, and for the package
    # steps, asked for by name (`mlbuild run package:docker`) or by `mlbuild package`
    default: bool = True

    @property
    def cmd(self) -> str | list[str] | None:
        """A command step's command; ``None`` for a step of another kind."""
        cmd: str | list[str] | None = self.config.get("cmd") if self.kind == COMMAND else None
        return cmd

    def display_cmd(self) -> str:
        import shlex

        cmd = self.cmd
        if cmd is None:
            return ""
        return cmd if isinstance(cmd, str) else shlex.join(cmd)


@dataclass(frozen=True)
class ServedModel:
    """The recipe's ``model:`` section, resolved: artifact paths are step outputs."""

    name: str
    artifacts: dict[str, str]  # artifact name → output path (normalised)
    flavor: str | None
    class_ref: str | None  # "src/serve.py:Model", the file relative to the workspace
    signature_file: str | None  # a step output holding the signature JSON …
    signature: dict[str, Any] | None  # … or the signature declared in the recipe

    def producers(self, graph: Graph) -> dict[str, str]:
        """Each file the server reads from the cache → the step whose outputs hold it."""
        files = [*self.artifacts.values()]
        if self.signature_file:
            files.append(self.signature_file)
        found = {}
        for path in files:
            for _, step in graph.outputs().holding(path):
                found[path] = step
        return found


@dataclass(frozen=True)
class Graph:
    """Steps in a topological order, with the context every fingerprint shares."""

    name: str
    recipe_file: str
    steps: dict[str, StepSpec]
    params: dict[str, Any]
    overrides: list[str]
    python: str | None
    lock_file: str | None
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    store_url: str | None = None  # the recipe's store.url
    # the recipe's cache section ({"remote": URL, "options": {...}}), read when a run starts
    remote_cache: dict[str, Any] | None = None
    # where each recipe key path starts ("steps.train.deps[0]" → [line, column]), for errors
    # found after compilation (a dep file that went missing)
    positions: dict[str, list[int]] = field(default_factory=dict)
    lines: dict[int, str] = field(default_factory=dict)
    model: ServedModel | None = None
    # params files mlbuild writes before running, so that they hold the overridden values
    param_writes: dict[str, str] = field(default_factory=dict)
    # the sweeper the Hydra config selects, for --multirun (see mlbuild.params.expand_sweeps)
    sweeper: dict[str, Any] | None = None
    hydra_output_dir: str | None = None  # Hydra's output dir, relative to the workspace
    # every recipe path, for the checks that depend on the filesystem (symlinks, existence)
    paths: list[PathUse] = field(default_factory=list)
    # paths the engine never writes or removes → what they are (the recipe, Hydra's config)
    protected: dict[str, str] = field(default_factory=dict)
    pipfile: str | None = None  # environment.pipfile (lock_file is its Pipfile.lock)
    # environment.isolated, or `run --isolated`: steps run in the environment built from the lock
    isolated: bool = False
    # `run --allow-failing-tests` / `package --allow-failing-tests`: the package steps build a
    # model whose tests did not pass (recorded in the image's labels); set per run, never compiled
    allow_failing_tests: bool = False
    package: PackageSpec | None = None  # the package: section
    # the recipe's `executors:`: executor name → its options (image, network, …)
    executors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the recipe's tests: name → the test as written (its paths normalised); mlbuild.testing
    # reads them (see mlbuild/testing/spec.py)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    def outputs(self) -> PathIndex[str]:
        """Every step's output paths → the step, indexed once per graph (not a field: it is
        derived, and stays out of ``to_json``)."""
        index: PathIndex[str] | None = self.__dict__.get("_outputs")
        if index is None:
            index = PathIndex((o.path, s.name) for s in self.steps.values() for o in s.outs)
            object.__setattr__(self, "_outputs", index)  # frozen: a cache, not a change
        return index

    def fence(self, root: Path, cache: Path | None) -> Fence:
        """What the engine may read, write and remove in workspace ``root`` for this graph."""
        return Fence(root, self.protected, cache)

    def mark_fenced(self, fence: Fence) -> Graph:
        """This graph, marked: the compiler has just checked every path in ``paths`` against
        ``fence`` and refused none (not a field: it holds in this process only, and stays out
        of ``to_json``)."""
        object.__setattr__(self, "_fenced", (fence.root, fence.protected, fence.cache))
        return self

    def take_fenced(self, fence: Fence) -> bool:
        """Whether the compiler of this command has just swept ``paths`` with ``fence`` — once:
        the mark is dropped on the first ask, so a later check (after a step may have written,
        or made a symlink) sweeps the filesystem again. A graph read from the compiled cache,
        or copied with ``dataclasses.replace``, carries no mark."""
        mark = self.__dict__.pop("_fenced", None)
        return mark is not None and mark == (fence.root, fence.protected, fence.cache)

    def to_json(self) -> dict[str, Any]:
        """What ``dataclasses.asdict`` makes of the graph, without its deep copy of every
        value (0.7 s for 2,000 steps): the steps' configs, params and lists are plain JSON
        already, and are shared with the graph, so serialise the result, never change it."""
        raw = _fields(self)
        raw["steps"] = {
            name: {**_fields(spec), "outs": [_fields(out) for out in spec.outs]}
            for name, spec in self.steps.items()
        }
        raw["datasets"] = {name: _fields(spec) for name, spec in self.datasets.items()}
        raw["paths"] = [_fields(use) for use in self.paths]
        raw["model"] = asdict(self.model) if self.model is not None else None
        raw["package"] = asdict(self.package) if self.package is not None else None
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Graph:
        steps = {
            name: _made(StepSpec, {**spec, "outs": [_made(Output, o) for o in spec["outs"]]})
            for name, spec in raw["steps"].items()
        }
        lines = {int(k): v for k, v in raw.get("lines", {}).items()}
        datasets = {k: DatasetSpec(**v) for k, v in raw.get("datasets", {}).items()}
        model = ServedModel(**raw["model"]) if raw.get("model") else None
        paths = [_made(PathUse, use) for use in raw.get("paths", [])]
        package = PackageSpec.from_json(raw["package"]) if raw.get("package") else None
        return cls(
            **{
                **raw,
                "steps": steps,
                "lines": lines,
                "datasets": datasets,
                "model": model,
                "paths": paths,
                "package": package,
            }
        )

    def problem(self, key: str, message: str) -> Problem:
        """A recipe problem at key path ``key`` (``steps.train.deps[0]``), located if known."""
        line, column = self.positions.get(key, [None, None])
        return Problem(
            file=self.recipe_file,
            line=line,
            column=column,
            path=key,
            message=message,
            source_line=self.lines.get(line) if line else None,
        )

    def default_targets(self) -> list[str]:
        """What ``run`` and ``plan`` bring up to date when no step is named: the steps whose
        ``default`` is true — not the searches, the tests nor the packages, which run when named
        (or, for a search, when a step taking its best params is selected: it depends on it)."""
        return [name for name, spec in self.steps.items() if spec.default]

    def upstream_closure(self, names: list[str]) -> list[str]:
        """``names`` and everything they depend on, in topological order."""
        wanted: set[str] = set()
        frontier = list(names)
        while frontier:
            current = frontier.pop()
            if current not in wanted:
                wanted.add(current)
                frontier.extend(self.steps[current].upstream)
        return [n for n in self.steps if n in wanted]


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass instance's fields → their values, not copied (``asdict`` without the
    recursion)."""
    names = _NAMES.get(type(obj))
    if names is None:
        names = _NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: getattr(obj, name) for name in names}


_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass → its fields' names
_KEYS: dict[type, frozenset[str]] = {}  # the same, as a set

_T = TypeVar("_T")


def _made(cls: type[_T], values: dict[str, Any]) -> _T:
    """``cls(**values)`` for a frozen dataclass read back from JSON. When ``values`` names
    exactly every field (what ``to_json`` writes), the instance's fields are set at once instead
    of through the frozen ``__init__``'s ``object.__setattr__`` per field (half the cost of
    reading 2,000 steps); otherwise the constructor, which fills the defaults and refuses an
    unknown name, as before. No class read this way has a ``__post_init__``."""
    names = _KEYS.get(cls)
    if names is None:
        names = _KEYS[cls] = frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]
    if values.keys() != names:
        return cls(**values)
    made = object.__new__(cls)
    made.__dict__.update(values)
    return made
