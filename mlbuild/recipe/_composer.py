"""A YAML composer that refuses alias bombs, deep nesting and oversized documents as it goes.

PyYAML's composer (and libyaml's, behind ``CSafeLoader``) builds the node graph without limits:
an alias is a second reference to the same node, cheap to compose, but everything that later walks
the tree pays for each reference again. This composer builds the same graph from the same parser
events, and keeps, for every anchored node, its size and height *as if its aliases were copies*.
Each node adds one to the count of nodes written, and each alias the expanded size of what it
names to the count of nodes aliases add: two bounds, the bomb's and the file's (its nodes cost
memory even when no alias repeats them). The first event that crosses one stops the document
with that event's line and column — a 500-byte bomb fails after a few dozen events. The cost
is that composition runs in Python (the parser stays in C): a few milliseconds for a real recipe,
and it only runs when the recipe or its configs changed (see ``mlbuild.graph.compiled``).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlbuild.recipe.limits import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED, MAX_NODES


class YamlLimitError(yaml.MarkedYAMLError):
    """A document over one of the limits in :mod:`mlbuild.recipe.limits`, at the event that
    crossed it. A ``YAMLError``, so every caller that handles bad YAML handles this too."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(problem=message, problem_mark=mark)
        self.message = message


class BoundedComposer:
    """Mixed in before a PyYAML parser, constructor and resolver (see :func:`loader_class`);
    replaces :class:`yaml.composer.Composer`'s ``get_single_node``."""

    # provided by the parser and the resolver it is mixed with
    check_event: Any
    peek_event: Any
    get_event: Any
    resolve: Any
    descend_resolver: Any
    ascend_resolver: Any

    def get_single_node(self) -> Node | None:
        self._anchors: dict[str, Node] = {}
        self._measured: dict[str, tuple[int, int]] = {}  # anchor → (expanded size, height)
        self._aliases = 0
        self._nodes = 0  # written
        self._expanded = 0  # added by aliases
        self.get_event()  # stream start
        node = None
        if not self.check_event(StreamEndEvent):
            self.get_event()  # document start
            node, _, _ = self._compose(None, None, 1)
            self.get_event()  # document end
        if not self.check_event(StreamEndEvent):
            event = self.get_event()
            raise ComposerError(
                "expected a single document in the stream",
                node.start_mark if node is not None else None,
                "but found another document",
                event.start_mark,
            )
        self.get_event()  # stream end
        return node

    def _compose(self, parent: Node | None, index: Any, depth: int) -> tuple[Node, int, int]:
        """The next node, its expanded size and its expanded height."""
        if self.check_event(AliasEvent):
            return self._alias(self.get_event(), depth)
        event = self.peek_event()
        anchor: str | None = event.anchor
        if anchor is not None and anchor in self._anchors:
            raise ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self._anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        if depth > MAX_DEPTH:
            raise YamlLimitError(
                f"the document nests deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise YamlLimitError(
                f"the document has more than {MAX_NODES} nodes (scalars, sequences and "
                "mappings); keep large data in files that steps read",
                event.start_mark,
            )
        self.descend_resolver(parent, index)
        if self.check_event(ScalarEvent):
            node: Node = self._scalar(anchor)
            size, height = 1, 1
        elif self.check_event(SequenceStartEvent):
            node, size, height = self._sequence(anchor, depth)
        else:
            node, size, height = self._mapping(anchor, depth)
        self.ascend_resolver()
        if anchor is not None:
            self._measured[anchor] = (size, height)
        return node, size, height

    def _alias(self, event: Any, depth: int) -> tuple[Node, int, int]:
        anchor: str = event.anchor
        if anchor not in self._anchors:
            raise ComposerError(None, None, f"found undefined alias {anchor!r}", event.start_mark)
        if anchor not in self._measured:  # still being composed: the alias is inside its anchor
            raise YamlLimitError(
                f"the alias *{anchor} is used inside the node it names; a recursive document "
                "cannot be loaded",
                event.start_mark,
            )
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlLimitError(
                f"the document uses more than {MAX_ALIASES} aliases; mlbuild refuses it rather "
                "than risk an alias bomb",
                event.start_mark,
            )
        size, height = self._measured[anchor]
        if depth - 1 + height > MAX_DEPTH:
            raise YamlLimitError(
                f"the document nests deeper than {MAX_DEPTH} levels (the alias *{anchor} expanded)",
                event.start_mark,
            )
        self._expanded += size
        if self._expanded > MAX_EXPANDED:
            raise YamlLimitError(
                f"aliases expand the document by more than {MAX_EXPANDED} nodes (each alias "
                "counts as a copy of what it names); mlbuild refuses it rather than risk an "
                "alias bomb — keep large data in files that steps read",
                event.start_mark,
            )
        return self._anchors[anchor], size, height

    def _scalar(self, anchor: str | None) -> Node:
        event = self.get_event()
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(ScalarNode, event.value, event.implicit)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if anchor is not None:
            self._anchors[anchor] = node
        return node

    def _sequence(self, anchor: str | None, depth: int) -> tuple[Node, int, int]:
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(SequenceNode, None, start.implicit)
        node = SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if anchor is not None:
            self._anchors[anchor] = node
        size, height = 1, 0
        while not self.check_event(SequenceEndEvent):
            child, child_size, child_height = self._compose(node, len(node.value), depth + 1)
            node.value.append(child)
            size, height = size + child_size, max(height, child_height)
        node.end_mark = self.get_event().end_mark
        return node, size, height + 1

    def _mapping(self, anchor: str | None, depth: int) -> tuple[Node, int, int]:
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode, None, start.implicit)
        node = MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if anchor is not None:
            self._anchors[anchor] = node
        size, height = 1, 0
        while not self.check_event(MappingEndEvent):
            key, key_size, key_height = self._compose(node, None, depth + 1)
            value, value_size, value_height = self._compose(node, key, depth + 1)
            node.value.append((key, value))
            size += key_size + value_size
            height = max(height, key_height, value_height)
        node.end_mark = self.get_event().end_mark
        return node, size, height + 1


# libyaml's parser where PyYAML was built with it (an order of magnitude faster), else pure Python
_SafeLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BoundedLoader(BoundedComposer, _SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader, composing within the limits."""
