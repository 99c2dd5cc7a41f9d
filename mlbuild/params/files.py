"""Plain params files (DVC's ``params.yaml`` convention): read them, apply overrides, write them.

A params file is data: YAML, JSON or TOML, no interpolation. Scripts read it themselves, so an
override of one of its keys is only honest if the file says so when the step runs: mlbuild renders
the edited file here (keeping comments, order and quoting: ruamel.yaml and tomlkit round-trip) and
the executor writes it before any step runs, as ``dvc exp run -S`` edits ``params.yaml``. The
rendered text is read back with the same parser the values came from, and an edit a reader would
see differently is refused instead of written.

Overrides follow Hydra's semantics for keys: ``key=v`` changes an existing key, ``+key=v`` adds a
new one, ``++key=v`` sets either way, ``~key`` (or ``~key=v``, checked) deletes.
"""

from __future__ import annotations

import datetime
import enum
import itertools
import json
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.errors import OverrideError, Problem, RecipeError
from mlbuild.params.overrides import no_parameter
from mlbuild.params.selection import render
from mlbuild.paths import Fence, UnsafePathError

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}
MAX_BYTES = 16 * 1024 * 1024  # a params file is a page of settings, not data


@dataclass(frozen=True)
class ParamsFile:
    """One params file as read from the workspace."""

    path: str  # as the recipe names it, normalised, relative to the workspace
    real: Path  # where it is read from and written to (symlinks resolved, inside the workspace)
    format: str  # yaml | json | toml
    text: str
    tree: dict[str, Any]


def read_params_file(
    root: Path, raw: str, recipe: Path, problem: Callable[[str], Problem]
) -> ParamsFile:
    """Read the params file ``raw`` (relative to ``root``); ``problem(message)`` locates a bad
    path in the recipe. Raises :class:`RecipeError`."""
    path = _checked_path(root, raw, recipe, problem)
    real = (root / path).resolve()  # inside the workspace: the fence resolved its symlinks
    if not real.is_file():
        what = "is not a file" if real.exists() else "does not exist"
        raise RecipeError([problem(f"params file '{raw}' {what}; create it or remove it")])
    size = real.stat().st_size
    if size > MAX_BYTES:
        raise RecipeError(
            [problem(f"params file '{raw}' is {size} bytes; a params file holds at most 16 MiB")]
        )
    try:
        text = real.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            [Problem(path, None, None, "", f"params file is not UTF-8 text: {exc}")]
        ) from None
    fmt = FORMATS[PurePosixPath(path).suffix.lower()]
    return ParamsFile(path, real, fmt, text, parse_tree(fmt, text, path))


def _checked_path(root: Path, raw: str, recipe: Path, problem: Callable[[str], Problem]) -> str:
    """``raw`` normalised, if mlbuild may write it (overrides are written into the file): what
    :class:`~mlbuild.paths.Fence` allows, and not the recipe."""
    try:
        rel = Fence(root).check(raw, writes=True)
    except UnsafePathError as exc:
        raise RecipeError([problem(f"params file {exc.message}")]) from None
    if root / rel == recipe:
        raise RecipeError([problem(f"'{raw}' is the recipe itself, not a params file")])
    return rel


def parse_tree(fmt: str, text: str, path: str) -> dict[str, Any]:
    """The values of a params file as plain JSON-able data; raises :class:`RecipeError` with the
    file's line and column."""
    if fmt == "yaml":
        from mlbuild.recipe import load_yaml

        tree: Any = load_yaml(text, path)[0]
    elif fmt == "json":
        tree = _parse_json(text, path)
    else:
        tree = _parse_toml(text, path)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise RecipeError(
            [
                Problem(
                    path, 1, 1, "", f"expected a mapping of parameters, got a {type(tree).__name__}"
                )
            ]
        )
    return {str(k): plain(v) for k, v in tree.items()}


def _parse_json(text: str, path: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                raise ValueError(f"duplicate key '{key}'")
            found[key] = value
        return found

    try:
        return json.loads(text or "{}", object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise RecipeError(
            [Problem(path, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")]
        ) from None
    except ValueError as exc:
        raise RecipeError([Problem(path, None, None, "", str(exc))]) from None


def _parse_toml(text: str, path: str) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, column = (int(where.group(1)), int(where.group(2))) if where else (None, None)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise RecipeError(
            [Problem(path, line, column, "", f"TOML syntax error: {message}")]
        ) from None


def plain(value: Any) -> Any:
    """JSON-able data: dates as ISO text (what the fingerprint and the run record hold)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def apply_overrides(
    pf: ParamsFile, overrides: list[Any], known: list[str]
) -> tuple[dict[str, Any], str | None]:
    """The file's values with ``overrides`` (parsed Hydra overrides) applied, and the text to
    write, or ``None`` when the values do not change. Raises :class:`OverrideError`."""
    tree = json.loads(json.dumps(pf.tree))
    for override in overrides:
        _apply(tree, override, pf.path, known, lambda v: v)
    if tree == pf.tree:
        return tree, None
    text = _render(pf, overrides, known)
    if plain(parse_tree(pf.format, text, pf.path)) != tree:
        lines = " ".join(o.input_line for o in overrides)
        raise OverrideError(
            f"cannot write {lines} into {pf.path} so that a reader of the file sees exactly "
            "these values; edit the file instead"
        )
    return tree, text


def _apply(
    tree: MutableMapping[str, Any],
    override: Any,
    file: str,
    known: list[str],
    convert: Callable[[Any], Any],
) -> None:
    line: str = override.input_line
    key: str = override.key_or_group
    if override.package is not None:
        raise OverrideError(
            f"cannot apply override '{line}': '@package' selects where a Hydra config group "
            f"goes, and '{key.split('.', maxsplit=1)[0]}' is a key of {file}"
        )
    *parents, leaf = key.split(".")
    node: Any = tree
    for depth, part in enumerate(parents):
        if part not in node and (override.is_add() or override.is_force_add()):
            node[part] = convert({})
        if part not in node:
            raise OverrideError(no_parameter(line, key, known))
        node = node[part]
        if not isinstance(node, MutableMapping):
            where = ".".join(parents[: depth + 1])
            raise OverrideError(
                f"cannot apply override '{line}': '{where}' is {render(node)} in {file}, not a "
                "mapping"
            )
    value = override.value()
    if override.is_delete():
        if leaf not in node:
            raise OverrideError(no_parameter(line, key, known, adding=False))
        if value is not None and node[leaf] != value:
            raise OverrideError(
                f"cannot apply override '{line}': '{key}' is {render(node[leaf])} in {file}, "
                f"not {render(value)}"
            )
        del node[leaf]
    elif override.is_add() and leaf in node:
        raise OverrideError(
            f"cannot apply override '{line}': parameter '{key}' already exists in {file}; "
            f"to change it use {line.lstrip('+')}"
        )
    elif not override.is_add() and not override.is_force_add() and leaf not in node:
        raise OverrideError(no_parameter(line, key, known))
    else:
        node[leaf] = convert(value)


def _render(pf: ParamsFile, overrides: list[Any], known: list[str]) -> str:
    if pf.format == "json":
        tree = json.loads(pf.text or "{}")
        for override in overrides:
            _apply(tree, override, pf.path, known, lambda v: v)
        indent = re.search(r"^([ \t]+)\S", pf.text, re.MULTILINE)
        text = json.dumps(tree, indent=indent.group(1) if indent else None, ensure_ascii=False)
        return text + ("\n" if pf.text.endswith("\n") or not pf.text else "")
    if pf.format == "toml":
        return _render_toml(pf, overrides, known)
    return _render_yaml(pf, overrides, known)


def _render_yaml(pf: ParamsFile, overrides: list[Any], known: list[str]) -> str:
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long value onto two lines
    doc, sequence, offset = load_yaml_guess_indent(pf.text, yaml=yaml)
    mapping = _mapping_indent(pf.text) or sequence or 2
    yaml.indent(mapping=mapping, sequence=sequence or mapping, offset=offset or 0)
    if doc is None:
        doc = CommentedMap()
    for override in overrides:
        _apply(doc, override, pf.path, known, _yaml_value)
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _mapping_indent(text: str) -> int | None:
    """How far the file indents a nested mapping under its key (ruamel guesses the sequences)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line, following in itertools.pairwise(lines):
        key_only = re.match(r"^( *)[^\s#-][^#]*:\s*(#.*)?$", line)
        inner = len(following) - len(following.lstrip(" "))
        if key_only and not following.lstrip().startswith("- ") and inner > len(key_only[1]):
            return inner - len(key_only[1])
    return None


def _yaml_value(value: Any) -> Any:
    """Quote a new string where a YAML 1.1 reader (PyYAML) would read it as something else
    (``yes``, ``1e3``, ``2024-01-01``): ruamel writes YAML 1.2, where those are plain text."""
    import yaml as pyyaml
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    if isinstance(value, dict):
        return {k: _yaml_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yaml_value(v) for v in value]
    if isinstance(value, str):
        try:
            misread = pyyaml.safe_load(value) != value
        except pyyaml.YAMLError:
            misread = True
        return DoubleQuotedScalarString(value) if misread else value
    return value


def _render_toml(pf: ParamsFile, overrides: list[Any], known: list[str]) -> str:
    import tomlkit

    def convert(value: Any) -> Any:
        if _holds_null(value):
            raise OverrideError(
                f"cannot write null into {pf.path}: TOML has no null; remove the key with "
                "~KEY instead"
            )
        return value

    doc = tomlkit.parse(pf.text)
    for override in overrides:
        _apply(doc, override, pf.path, known, convert)
    return tomlkit.dumps(doc)


def _holds_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return value is None
