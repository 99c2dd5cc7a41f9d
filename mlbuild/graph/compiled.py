"""Load the graph for a recipe and overrides, from the compiled cache when nothing changed.

The key is the recipe's bytes, the overrides and mlbuild's version; the entry also lists the
content hashes of the Hydra config files it was composed from, checked through the state table.
A hit needs neither pydantic nor Hydra, which is what keeps a no-op ``mlbuild run`` fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from mlbuild.cache import FORMAT_VERSION, Hasher, hash_bytes
from mlbuild.graph.model import Graph

_KEEP = 64  # compiled entries kept; the oldest go first
# bumped when what a compiled entry holds or what compilation checks changes, so no entry
# compiled by older rules is trusted (2: every path checked by mlbuild.paths, and recorded;
# 3: params pasted into shell commands must be inert)
_GRAPH_VERSION = 3


def load_graph(
    recipe_path: Path,
    meta_dir: Path,
    hasher: Hasher,
    overrides: list[str],
    *,
    cache: Path | None = None,
) -> Graph:
    """The compiled graph of the recipe at ``recipe_path`` with ``overrides`` applied; ``cache``
    is the cache directory, which no recipe path may reach.

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
    key = hash_bytes(
        json.dumps(
            [__version__, FORMAT_VERSION, _GRAPH_VERSION, hash_bytes(text), overrides]
        ).encode()
    )
    entry_path = meta_dir / "compiled" / f"{key}.json"
    cached = _read(entry_path, hasher)
    if cached is not None:
        return cached
    try:
        graph, inputs = _compile(recipe_path, text, hasher, overrides, cache)
    except UnicodeDecodeError as exc:
        from mlbuild.errors import Problem, RecipeError

        raise RecipeError(
            [Problem(_display(recipe_path), None, None, "", f"not UTF-8: {exc}")]
        ) from None
    _write(entry_path, {"inputs": inputs, "graph": graph.to_json()})
    return graph


def _read(entry_path: Path, hasher: Hasher) -> Graph | None:
    try:
        entry = json.loads(entry_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for path, digest in entry["inputs"].items():
        current = hasher.digest(path)
        if current is None or current.value != digest:
            return None
    return Graph.from_json(entry["graph"])


def _compile(
    recipe_path: Path, text: bytes, hasher: Hasher, overrides: list[str], cache: Path | None
) -> tuple[Graph, dict[str, str]]:
    from mlbuild.errors import RecipeError
    from mlbuild.graph.build import compile_graph, protected_paths
    from mlbuild.params import compose_params, needs_hydra
    from mlbuild.paths import Fence, UnsafePathError
    from mlbuild.recipe import SCHEMA_COPY, HydraParams, parse_recipe, write_schema

    root = recipe_path.parent
    display = _display(recipe_path)
    write_schema(root / SCHEMA_COPY, if_stale=True)  # keep the editors' copy current
    recipe, source = parse_recipe(text.decode("utf-8"), display)
    inputs: dict[str, str] = {}
    params: dict[str, object] = {}
    if isinstance(recipe.params, HydraParams):
        fence = Fence(root, protected_paths(recipe, recipe_path.name), cache)
        try:  # before Hydra reads anything from it
            config_rel = fence.check(recipe.params.config_dir, writes=False)
        except UnsafePathError as exc:
            raise RecipeError([source.problem(("params", "config_dir"), exc.message)]) from None
        config_dir = root / config_rel
        params = compose_params(
            inline=None,
            config_dir=config_dir,
            config_name=recipe.params.config_name,
            overrides=overrides,
            recipe_file=display,
        )
        digest = hasher.digest(config_rel)
        if digest is not None:
            inputs[config_rel] = digest.value
    elif needs_hydra(recipe.params, overrides):
        params = compose_params(
            inline=recipe.params or {}, config_dir=None, overrides=overrides, recipe_file=display
        )
    elif recipe.params:
        params = dict(recipe.params)
    graph = compile_graph(
        recipe, source, root, params, overrides, recipe_name=recipe_path.name, cache=cache
    )
    return graph, inputs


def _write(entry_path: Path, entry: dict[str, object]) -> None:
    entry_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=entry_path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(entry, handle)
    os.replace(tmp, entry_path)
    entries = sorted(entry_path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-_KEEP]:
        old.unlink(missing_ok=True)


def _display(path: Path) -> str:
    """How messages name the recipe: relative to the current directory when below it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
