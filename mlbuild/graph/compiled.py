"""Load the graph for a recipe and overrides, from the compiled cache when nothing changed.

The key is the recipe's bytes, the overrides and mlbuild's version; the entry also lists the
content hashes of the params files and Hydra config files it was composed from (checked through
the state table) and the hashes of the environment variables its ``${oc.env:…}`` resolvers read
(unset ones too). A hit needs neither pydantic nor Hydra, which is what keeps a no-op
``mlbuild run`` fast.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild import atomic
from mlbuild.cache import FORMAT_VERSION, Hasher, hash_bytes
from mlbuild.graph.kinds import SECTIONS
from mlbuild.graph.model import Graph

_KEEP = 64  # compiled entries kept; the oldest go first

if TYPE_CHECKING:
    from mlbuild.params import ParamSpec
    from mlbuild.recipe import Recipe, SourceMap

# bumped when what a compiled entry holds or what compilation checks changes, so no entry
# compiled by older rules is trusted (2: every path checked by mlbuild.paths, and recorded;
# 3: params pasted into shell commands must be inert; 4: env vars, params files and per-step
# problems; 5: step kinds, their config and executors; 6: the tests section; 7: the package:
# section and environment.isolated; 8: the remote cache section; 9: params_from; 11: the tests',
# searches' and packages' steps, StepSpec.default, a search's takers' edges; 12: the data key an
# entry was compiled from, mlbuild.graph.same_data)
_GRAPH_VERSION = 12


def load_graph(
    recipe_path: Path,
    meta_dir: Path,
    hasher: Hasher,
    overrides: list[str],
    *,
    cache: Path | None = None,
    best: bool = True,
) -> Graph:
    """The compiled graph of the recipe at ``recipe_path`` with ``overrides`` applied; ``cache``
    is the cache directory, which no recipe path may reach. ``best``: steps that declare
    ``params_from`` take their search's best params (:mod:`mlbuild.graph.best`).

    Checks that depend on the filesystem as it is now (symlinks, missing inputs) are the
    caller's, through :meth:`~mlbuild.graph.Planner.check_inputs`: a cached graph is only as
    valid as the recipe's bytes. Raises :class:`~mlbuild.errors.RecipeError` or
    :class:`~mlbuild.errors.OverrideError`.
    """
    from mlbuild import __version__
    from mlbuild.recipe.limits import read_limited

    try:
        text = read_limited(recipe_path, _display(recipe_path))  # a huge file is not read whole
    except FileNotFoundError:
        from mlbuild.errors import Problem, RecipeError

        raise RecipeError(
            [
                Problem(
                    _display(recipe_path),
                    None,
                    None,
                    "",
                    "no recipe here; create one with `mlbuild init`",
                )
            ]
        ) from None
    sections = sorted(SECTIONS.items())  # a section compiler registered since compiles anew
    key = hash_bytes(
        json.dumps(
            [__version__, FORMAT_VERSION, _GRAPH_VERSION, sections, hash_bytes(text), overrides]
        ).encode()
    )
    # what the data key adds to the data: the text key's context, and what the compile reads
    # besides (the recipe's file name and the cache directory, which no recipe path may reach)
    context = [__version__, FORMAT_VERSION, _GRAPH_VERSION, sections, overrides]
    context += [recipe_path.name, None if cache is None else str(cache)]
    entry_path = meta_dir / "compiled" / f"{key}.json"
    graph = _read(entry_path, hasher)
    if graph is None:
        graph = _compiled(
            recipe_path, text, hasher, context, overrides, cache, meta_dir, entry_path
        )
    if not best:
        return graph
    from mlbuild.graph.best import with_best_params

    return with_best_params(
        graph,
        meta_dir,
        lambda taken: load_graph(recipe_path, meta_dir, hasher, taken, cache=cache, best=False),
    )


def _compiled(
    recipe_path: Path,
    text: bytes,
    hasher: Hasher,
    context: list[Any],
    overrides: list[str],
    cache: Path | None,
    meta_dir: Path,
    entry_path: Path,
) -> Graph:
    """The graph of a recipe whose bytes no entry holds: an entry's graph relocated when the
    recipe's data are unchanged (:mod:`mlbuild.graph.same_data`), else compiled; either way
    written under the new bytes' key."""
    from mlbuild.graph import same_data
    from mlbuild.recipe._yaml import load_yaml

    display = _display(recipe_path)
    try:
        with _no_cycle_collection():
            data, source = load_yaml(text.decode("utf-8"), display)
            data_key = same_data.data_key(data, context)
            found = _same_data(meta_dir, data_key, source, hasher)
            if found is not None:
                graph, entry = found
            else:
                graph, inputs, env = _compile(
                    recipe_path, data, source, hasher, overrides, cache, meta_dir
                )
                entry = {"inputs": inputs, "env": env, "data": data_key, "graph": graph.to_json()}
            _write(entry_path, entry)
            if data_key is not None:
                same_data.remember(meta_dir, data_key, entry_path.stem)
    except UnicodeDecodeError as exc:
        from mlbuild.errors import Problem, RecipeError

        raise RecipeError([Problem(display, None, None, "", f"not UTF-8: {exc}")]) from None
    return graph


def _same_data(
    meta_dir: Path, data_key: str | None, source: SourceMap, hasher: Hasher
) -> tuple[Graph, dict[str, object]] | None:
    """The graph compiled from the same data as the recipe ``source`` maps, located there, and
    the entry to write for it; ``None`` when there is none, or it cannot be trusted as it is."""
    from mlbuild.graph import same_data

    if data_key is None:
        return None
    name = same_data.find(meta_dir, data_key)
    if name is None:
        return None
    entry = _entry(meta_dir / "compiled" / f"{name}.json")
    if entry is None or entry.get("data") != data_key or not inputs_unchanged(entry, hasher):
        return None
    raw = entry.get("graph")
    renewed = same_data.located(raw, source) if isinstance(raw, dict) else None
    if renewed is None:
        return None
    entry = {**entry, "graph": renewed}  # written as read: no second to_json of every step
    graph = _graph(entry)
    return None if graph is None else (graph, entry)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Compiling allocates about a million objects at 2,000 steps (YAML nodes, models, specs),
    and the cyclic collector's passes over that growing heap were a sixth of the compile's CPU.
    Reference counting still frees everything without a cycle; the collector is back on (and
    finds any cycle) as soon as the compile ends, however it ends. The heap is bounded by the
    YAML limits (mlbuild.recipe.limits), not by the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def env_digest(name: str) -> str | None:
    """The hash of environment variable ``name``'s value (``None`` when unset): what a compiled
    entry keeps, never the value itself."""
    value = os.environ.get(name)
    return None if value is None else hash_bytes(value.encode("utf-8", "surrogateescape"))


def _read(entry_path: Path, hasher: Hasher) -> Graph | None:
    """The graph the entry holds if its inputs are unchanged; ``None`` when there is none or it
    is not what :func:`_write` writes (damaged, truncated, another shape): compiled anew."""
    entry = _entry(entry_path)
    if entry is None or not inputs_unchanged(entry, hasher):
        return None
    return _graph(entry)


def _entry(entry_path: Path) -> dict[str, object] | None:
    """The entry at ``entry_path`` as JSON, or ``None`` when it cannot be read as a mapping."""
    if atomic.planted(entry_path.parent):  # a symlink, maybe out of the workspace; a file
        return None
    try:
        with _no_cycle_collection():  # tens of thousands of objects, none in a cycle
            entry = json.loads(atomic.read_own(entry_path))  # nor a FIFO, nor a symlink
    except (OSError, ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def inputs_unchanged(entry: dict[str, Any], hasher: Hasher) -> bool:
    """Whether the params files, Hydra config files and environment variables ``entry`` was
    compiled from are as they were (a mis-shapen list of them: not)."""
    try:
        for path, digest in entry["inputs"].items():
            current = hasher.digest(path)
            if current is None or current.value != digest:
                return False
        for name, digest in entry.get("env", {}).items():
            if env_digest(name) != digest:
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


def _graph(entry: dict[str, Any]) -> Graph | None:
    """The graph ``entry`` holds, or ``None`` when it is not what :meth:`Graph.to_json` wrote."""
    try:
        with _no_cycle_collection():
            return Graph.from_json(entry["graph"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def _compile(
    recipe_path: Path,
    data: Any,
    source: SourceMap,
    hasher: Hasher,
    overrides: list[str],
    cache: Path | None,
    meta_dir: Path,
) -> tuple[Graph, dict[str, str], dict[str, str | None]]:
    from mlbuild import __version__
    from mlbuild.errors import OverrideError, RecipeError
    from mlbuild.graph.build import compile_graph, protected_paths
    from mlbuild.params import resolve_params
    from mlbuild.paths import Fence, UnsafePathError
    from mlbuild.recipe import ParamSources
    from mlbuild.recipe.structure import parse_loaded

    root = recipe_path.parent
    # a recipe whose structure was valid before (only param values changed) is not validated
    # again: mlbuild.recipe.structure
    recipe = parse_loaded(data, source, meta_dir / "recipes", f"{__version__}/{_GRAPH_VERSION}")
    _check_recipe_overrides(recipe, source)
    section = recipe.params
    if isinstance(section, ParamSources) and _below_root(section.config_dir):
        assert section.config_dir is not None
        fence = Fence(root, protected_paths(recipe, recipe_path.name), cache)
        try:  # before Hydra reads anything from it
            fence.check(section.config_dir, writes=False)
        except UnsafePathError as exc:
            raise RecipeError([source.problem(("params", "config_dir"), exc.message)]) from None
    try:
        resolved = resolve_params(
            _param_spec(recipe),
            root=root,
            recipe=recipe_path,
            overrides=[*recipe.overrides, *overrides],
            problem=source.problem,
            job_name=recipe.name,
        )
    except OverrideError as exc:
        raise _in_recipe(exc, recipe, source) from None
    inputs: dict[str, str] = {}
    for rel in resolved.inputs:
        digest = hasher.digest(rel)
        if digest is not None:
            inputs[rel] = digest.value
    env = {name: env_digest(name) for name in resolved.env_read}
    graph = compile_graph(
        recipe,
        source,
        root,
        resolved,
        overrides,
        env,
        recipe_name=recipe_path.name,
        cache=cache,
    )
    return graph, inputs, env


def _below_root(config_dir: str | None) -> bool:
    """A config directory the fence checks: any but the workspace root itself (``.``)."""
    return config_dir is not None and os.path.normpath(config_dir) != "."


def _param_spec(recipe: Recipe) -> ParamSpec:
    """The recipe's ``params:``, whatever shape it was written in."""
    from mlbuild.params import ParamSpec
    from mlbuild.recipe import ParamSources

    section = recipe.params
    if section is None:
        return ParamSpec()
    if isinstance(section, str):
        return ParamSpec(files=[section], file_keys=[("params",)])
    if isinstance(section, list):
        return ParamSpec(files=section, file_keys=[("params", i) for i in range(len(section))])
    if isinstance(section, ParamSources):
        return ParamSpec(
            files=section.files,
            file_keys=[("params", "files", i) for i in range(len(section.files))],
            config_dir=section.config_dir,
            config_name=section.config_name,
            values=section.values,
            values_key=("params", "values"),
        )
    return ParamSpec(values=section, values_key=("params",))


def _check_recipe_overrides(recipe: Recipe, source: SourceMap) -> None:
    """Each of the recipe's ``overrides:`` parses, and none is a sweep; else a located error."""
    if not recipe.overrides:
        return
    from mlbuild.errors import OverrideError, RecipeError
    from mlbuild.params import check_overrides

    problems = []
    for index, line in enumerate(recipe.overrides):
        try:
            check_overrides([line])
        except OverrideError as exc:
            message = exc.message
            if "is a sweep" in message:
                message = (
                    f"'{line}' is a sweep; sweeps belong on the command line with --multirun, "
                    "or in the Hydra config's hydra.sweeper.params"
                )
            problems.append(source.problem(("overrides", index), message))
    if problems:
        raise RecipeError(problems)


def _in_recipe(exc: Exception, recipe: Recipe, source: SourceMap) -> Exception:
    """An override error caused by one of the recipe's ``overrides:``, located there."""
    from mlbuild.errors import OverrideError, RecipeError

    assert isinstance(exc, OverrideError)
    for index, line in enumerate(recipe.overrides):
        if f"'{line}'" in exc.message:
            return RecipeError([source.problem(("overrides", index), exc.message)])
    return exc


def _write(entry_path: Path, entry: dict[str, object]) -> None:
    """Write ``entry`` and prune the oldest beyond :data:`_KEEP`; nothing when something other
    than a folder stands at ``.mlbuild/compiled`` (a symlink, maybe out of the workspace; a
    file): each run then compiles in full, and nothing there is removed (mlbuild removes only
    what it made), as for the pointers of :mod:`mlbuild.graph.same_data`."""
    if atomic.planted(entry_path.parent):
        return
    atomic.write_json(entry_path, entry, sync=False)  # derived: recompiled if lost
    entries = sorted(entry_path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-_KEEP]:
        old.unlink(missing_ok=True)


def _display(path: Path) -> str:
    """How messages name the recipe: relative to the current directory when below it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
