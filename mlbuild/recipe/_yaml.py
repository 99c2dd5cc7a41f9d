"""YAML read with the position of every key and value, and duplicate keys rejected.

PyYAML's composer gives each node a start mark; we walk the composed tree once to record where each
key path begins, then let the safe constructor build plain Python values from the same tree. Errors
can then point at the key itself, not at its parent mapping. Composition is bounded (size, depth,
aliases: ``limits.py``), so neither the walk nor anything after it can blow up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from mlbuild.errors import Problem, RecipeError
from mlbuild.recipe._composer import BoundedLoader, YamlLimitError
from mlbuild.recipe.limits import MAX_BYTES, read_limited, too_big

# Booleans and numbers as YAML 1.2 reads them — as editors read the recipe (yaml-language-server)
# and as the JSON Schema types it. PyYAML's YAML 1.1 also reads yes/no/on/off as booleans (so
# `always_run: yes` passed here and failed in the editor), `1e-3` (no dot) as a string and
# `12:30` as 750.
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
YAML12_INT = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$")
YAML12_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class _Loader(BoundedLoader):
    # a table of new lists: the resolvers added below leave PyYAML's own loaders as they are
    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (BOOL_TAG, INT_TAG, FLOAT_TAG)]
        for first, resolvers in BoundedLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(BOOL_TAG, YAML12_BOOL, list("tTfF"))
_Loader.add_implicit_resolver(INT_TAG, YAML12_INT, list("-+0123456789"))
_Loader.add_implicit_resolver(FLOAT_TAG, YAML12_FLOAT, list("-+.0123456789"))  # after int

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Where each key path of a YAML document begins, for pointing errors into the file."""

    file: str
    lines: list[str]
    keys: dict[KeyPath, Position] = field(default_factory=dict)
    values: dict[KeyPath, Position] = field(default_factory=dict)

    def locate(self, path: KeyPath, *, at_key: bool = False) -> Position | None:
        """The position of ``path``'s key (or value), else of its nearest located ancestor."""
        table = self.keys if at_key else self.values
        while True:
            found = table.get(path) or self.keys.get(path) or self.values.get(path)
            if found is not None or not path:
                return found
            path = path[:-1]

    def problem(
        self, path: KeyPath, message: str, *, at_key: bool = False, pos: Position | None = None
    ) -> Problem:
        pos = pos or self.locate(path, at_key=at_key)
        line = pos.line if pos else None
        source = self.lines[line - 1] if line is not None and line <= len(self.lines) else None
        return Problem(
            file=self.file,
            line=line,
            column=pos.column if pos else None,
            path=format_path(path),
            message=message,
            source_line=source,
        )


def format_path(path: KeyPath) -> str:
    """``('steps', 'train', 'outs', 0)`` → ``steps.train.outs[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pos(mark: yaml.Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def load_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely; return its value and a :class:`SourceMap`.

    Raises :class:`RecipeError` for a syntax error, for keys that appear twice in one mapping and
    for a document over the limits of :mod:`mlbuild.recipe.limits`.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise RecipeError([Problem(file, None, None, "", too_big(size))])
    source = SourceMap(file=file, lines=text.splitlines())
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, source
        problems: list[Problem] = []
        _walk(node, (), source, problems)
        if problems:
            raise RecipeError(problems)
        value = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise RecipeError([_located(exc, file, source.lines)]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([Problem(file, None, None, "", f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return value, source


def _located(exc: yaml.MarkedYAMLError, file: str, lines: list[str]) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if isinstance(exc, YamlLimitError):
        message = exc.message
    else:
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context})"
    line = mark.line + 1 if mark else None
    return Problem(
        file=file,
        line=line,
        column=mark.column + 1 if mark else None,
        path="",
        message=message,
        source_line=lines[line - 1] if line is not None and line <= len(lines) else None,
    )


def check_yaml_limits(path: Path, display: str) -> None:
    """Refuse the YAML file at ``path`` if it is over the limits, before a library that knows
    none (Hydra, OmegaConf) reads it. Raises :class:`RecipeError` naming ``display`` and the
    line; any other problem (unreadable, a syntax error) is left to that library to report."""
    try:
        text = read_limited(path, display).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return
    loader = BoundedLoader(text)
    try:
        loader.get_single_node()
    except YamlLimitError as exc:
        raise RecipeError([_located(exc, display, text.splitlines())]) from None
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


def safe_load_yaml(text: str) -> Any:
    """``yaml.safe_load`` within the limits, for YAML files mlbuild reads besides the recipe
    (metrics, DVC files). Raises ``ValueError``, as ``json.loads`` does, for any YAML problem."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ValueError(too_big(size))
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise ValueError(_describe_marked(exc, text)) from None
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: KeyPath, source: SourceMap, problems: list[Problem]) -> None:
    source.values.setdefault(path, _pos(node.start_mark))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Position] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            key_pos = _pos(key_node.start_mark)
            if key == "<<":  # a merge key; its entries may legitimately repeat keys
                merged.append(value_node)
                continue
            if key in seen:
                problems.append(
                    source.problem(
                        child,
                        f"duplicate key '{key}' (first defined at line {seen[key].line}); "
                        "a key may appear once per mapping",
                        pos=key_pos,
                    )
                )
                continue
            seen[key] = key_pos
            source.keys[child] = key_pos
            _walk(value_node, child, source, problems)
        # merged last: a key written beside ``<<:`` overrides the merged one, and is located
        # where it is written (positions are set by the first walk that reaches a path)
        for value_node in merged:
            _walk(value_node, path, source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, problems)


def _describe_marked(exc: yaml.MarkedYAMLError, text: str) -> str:
    """``line 1, column 8: while parsing …; did not find …`` and the line itself, for a YAML
    file mlbuild reads besides the recipe (its name is the caller's to add)."""
    what = "; ".join(part for part in (exc.context, exc.problem) if part)
    mark = exc.context_mark or exc.problem_mark
    if mark is None:
        return what
    lines = text.splitlines()
    line = lines[mark.line] if mark.line < len(lines) else ""
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}\n    {line}"
