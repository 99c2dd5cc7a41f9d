"""Select the parameter values a step declares, and interpolate ``${params.KEY}`` into strings."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from mlbuild.params.shell import heredoc_clash, unsafe_reason

_REF = re.compile(r"\$\{params\.([A-Za-z0-9_.\-]+)\}")


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a": {"b": 1}, "a.b": 1}``: every key path, inner nodes included."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        flat[dotted] = value
        if isinstance(value, dict):
            flat.update(flatten(value, f"{dotted}."))
    return flat


def select(
    params: dict[str, Any], patterns: list[str], *, flat: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The values ``patterns`` select, as ``{dotted_key: value}``, and the patterns matching none.

    A pattern is a dotted key (``train.lr``, or ``train`` for the whole subtree) or a glob
    (``train.*``). Overlapping selections are reduced to the outermost key. ``flat`` is
    ``flatten(params)`` when the caller selects for many steps: flattened once, a plain key costs
    one lookup and only globs scan the keys.
    """
    if flat is None:
        flat = flatten(params)
    chosen: dict[str, Any] = {}
    unmatched: list[str] = []
    for pattern in patterns:
        if _GLOB.search(pattern):
            hits = [k for k in flat if fnmatch.fnmatchcase(k, pattern)]
        else:
            hits = [pattern] if pattern in flat else []
        if not hits:
            unmatched.append(pattern)
        for key in hits:
            chosen[key] = flat[key]
    outermost = {k: v for k, v in chosen.items() if not _inside_any(k, chosen)}
    return dict(sorted(outermost.items())), unmatched


_GLOB = re.compile(r"[*?\[]")


def _inside_any(key: str, chosen: dict[str, Any]) -> bool:
    """Whether a key path enclosing ``key`` (``a`` or ``a.b`` for ``a.b.c``) was chosen too."""
    end = key.rfind(".")
    while end > 0:
        if key[:end] in chosen:
            return True
        end = key.rfind(".", 0, end)
    return False


def broken(pattern: str, errors: dict[str, str]) -> list[str]:
    """The keys of ``errors`` (keys that do not resolve) that ``pattern`` selects: the key
    itself, a key inside a subtree it selects, or a subtree the key is inside of."""
    hits = []
    for key in errors:
        parts = key.split(".")
        nested = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
        if any(fnmatch.fnmatchcase(k, pattern) for k in nested) or pattern.startswith(f"{key}."):
            hits.append(key)
    return hits


def nest(selected: dict[str, Any]) -> dict[str, Any]:
    """``{"train.lr": 1}`` → ``{"train": {"lr": 1}}``: the shape a step's params file has."""
    tree: dict[str, Any] = {}
    for dotted, value in selected.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def references(text: str) -> list[str]:
    """The parameter keys ``text`` refers to as ``${params.KEY}``."""
    return _REF.findall(text)


class UnsafeValueError(ValueError):
    """A param value that cannot be pasted into a shell command (see :mod:`.shell`)."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        shown = json.dumps(value if len(value) <= 40 else value[:37] + "...")  # escapes controls
        super().__init__(
            f"param '{key}' = {shown} cannot be pasted into a shell command ({reason}); use a "
            "list cmd, or read it from MLBUILD_PARAMS"
        )
        self.key, self.value, self.reason = key, value, reason


def interpolate(text: str, flat: dict[str, Any], *, for_shell: bool) -> str:
    """Replace ``${params.KEY}`` by the value. When ``text`` is a shell command, a value is pasted
    only if it is inert (``shell.py`` says why that is the rule).

    Raises ``KeyError`` with a missing key, :class:`UnsafeValueError` for a value that is not
    inert in a shell command.
    """

    def value_of(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in flat:
            raise KeyError(key)
        value = render(flat[key])
        reason = unsafe_reason(value) if for_shell else None
        if reason is not None:
            raise UnsafeValueError(key, value, reason)
        return value

    pasted = _REF.sub(value_of, text)
    clash = heredoc_clash(text, pasted) if for_shell else None
    if clash is not None:
        fragment, reason = clash
        key = _REF.findall(fragment)[0]
        raise UnsafeValueError(key, render(flat[key]), reason)
    return pasted


def render(value: Any) -> str:
    """A parameter value as text on a command line: YAML-ish scalars, JSON for containers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
