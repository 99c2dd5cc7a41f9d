"""The recipe's named sections compared entry by entry: test gates, searches, package settings.

``tests:`` and ``search:`` are mappings of named entries; a reviewer wants to know which gate (or
search) was added, removed or loosened, and how — so each entry is compared on its own, field by
field, and a search's space dimension by dimension (a range shown whole, ``float [0.001, 100]
log``, not as three leaves). ``package:`` is settings: compared leaf by leaf.

Sections are compared as written in the recipe (after YAML, before defaults are filled in): a
default written out where it was implied shows as a change, which is what the reviewer sees in
the recipe's diff too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlbuild.nested import leaves


@dataclass(frozen=True)
class Change:
    """A value at a key path, before and after (``None``: absent on that side)."""

    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass
class EntryDiff:
    """A named entry of ``tests:`` or ``search:`` that is not the same at A and B."""

    name: str
    change: str  # added | removed | changed
    kind: str | None  # a test's kind; a search's step
    fields: list[Change] = field(default_factory=list)  # empty when added or removed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "kind": self.kind,
            "fields": [c.to_json() for c in self.fields],
        }


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Leaf by leaf (dotted key paths), in B's order then what only A has."""
    before, after = leaves(old), leaves(new)
    found = [
        Change(k, before.get(k), v)
        for k, v in after.items()
        if before.get(k) != v or k not in before
    ]
    found += [Change(k, v, None) for k, v in before.items() if k not in after]
    return found


def gates(old: Any, new: Any) -> list[EntryDiff]:
    """The test gates (``tests:``) added, removed or changed from ``old`` to ``new``."""
    return _entries(old, new, lambda entry: _text(entry.get("kind")), changes)


def searches(old: Any, new: Any) -> list[EntryDiff]:
    """The searches (``search:``) added, removed or changed; a space compared by dimension."""
    return _entries(old, new, lambda entry: _text(entry.get("step")), _search_fields)


def package(old: Any, new: Any) -> list[Change]:
    """The ``package:`` settings that changed, as ``package.docker.image`` and so on."""
    found = changes(_mapping(old), _mapping(new))
    return [Change(f"package.{c.path}", c.old, c.new) for c in found]


def _entries(
    old: Any,
    new: Any,
    kind: Callable[[dict[str, Any]], str | None],
    compare: Callable[[dict[str, Any], dict[str, Any]], list[Change]],
) -> list[EntryDiff]:
    before, after = _mapping(old), _mapping(new)
    found = []
    for name, entry in after.items():
        if name not in before:
            found.append(EntryDiff(str(name), "added", kind(_mapping(entry))))
            continue
        fields = compare(_mapping(before[name]), _mapping(entry))
        if fields:
            found.append(EntryDiff(str(name), "changed", kind(_mapping(entry)), fields))
    found += [
        EntryDiff(str(name), "removed", kind(_mapping(entry)))
        for name, entry in before.items()
        if name not in after
    ]
    return found


def _search_fields(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    rest = changes(
        {k: v for k, v in old.items() if k != "space"},
        {k: v for k, v in new.items() if k != "space"},
    )
    space_a, space_b = old.get("space"), new.get("space")
    if not (isinstance(space_a, dict) and isinstance(space_b, dict)):
        if _space(space_a) == _space(space_b):
            return rest
        return [*rest, Change("space", _space(space_a), _space(space_b))]
    keys = [*space_b, *(k for k in space_a if k not in space_b)]
    dims = [Change(f"space.{k}", _range(space_a.get(k)), _range(space_b.get(k))) for k in keys]
    return [*rest, *(d for d in dims if d.old != d.new)]


def _space(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _range(v) for k, v in value.items()}
    return value


def _range(value: Any) -> str | None:
    """A dimension as a reviewer reads it: ``float [0.001, 100.0] log``, ``one of [200, 1000]``."""
    if value is None:
        return None
    if isinstance(value, list):
        return f"one of {_list(value)}"
    if not isinstance(value, dict):
        return str(value)
    kind = value.get("type")
    if kind == "categorical":
        return f"one of {_list(value.get('choices'))}"
    if kind in ("float", "int"):
        text = f"{kind} [{_scalar(value.get('low'))}, {_scalar(value.get('high'))}]"
        if value.get("log"):
            text += " log"
        if value.get("step") is not None:
            text += f" step {_scalar(value.get('step'))}"
        return text
    return str(value)


def _list(value: Any) -> str:
    if not isinstance(value, list):
        return str(value)
    return "[" + ", ".join(_scalar(v) for v in value) + "]"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
