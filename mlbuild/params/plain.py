"""Plain ``key=value`` overrides, read and applied without importing Hydra.

Importing Hydra's override grammar costs ~0.15 s and a compose ~0.1 s more, paid on every
``mlbuild run train.lr=0.01``. Most overrides are one existing scalar set to a number, a word,
``true``/``false``/``null`` or a quoted string: for those, the value Hydra's grammar gives is
known (its lexer rules ``INT``, ``FLOAT``, ``BOOL``, ``NULL``, ``ID`` and ``QUOTED_VALUE``), and
so is what a compose of inline values makes of them. Everything else — ``+key``, ``~key``,
``key=[…]``, sweeps, functions, ``${…}``, escapes, whitespace, a key that does not exist or holds
a mapping, values with ``${…}`` or ``???`` — is left to Hydra, as before.

The patterns below are deliberately narrower than Hydra's grammar: a line they accept is one
Hydra parses to the same key and the same typed value, and ``tests/params/test_plain.py`` runs a
table of overrides through both paths and requires identical results (the proof).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlbuild.params.overrides import BASIC_SWEEPER, SweeperInfo

# a dotted key of Hydra's KEY_SPECIAL parts, without ``$`` (Hydra's DOT_PATH) and no integers
_KEY = r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*"
_LINE = re.compile(rf"^({_KEY})=(.*)$", re.DOTALL)
_INT = re.compile(r"^[+-]?(?:0|[1-9][0-9]*)$")  # INT without '_' separators
# FLOAT's POINT_FLOAT with digits on both sides, or EXPONENT_FLOAT; no '_', inf or nan
_FLOAT = re.compile(r"^[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)$")
# an ID, or IDs joined by '.', '/' or '-' (UNQUOTED_CHAR): Hydra keeps the text as it is
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(?:[./][A-Za-z_][A-Za-z0-9_-]*)*$")
# words Hydra's lexer reads as something else than text (BOOL, NULL, FLOAT), in any case
_NOT_TEXT = {"true", "false", "null", "nan", "inf"}
_CONSTANTS = {"true": True, "false": False, "null": None}
# a quoted string with no escapes and no interpolation
_QUOTED = re.compile(r"""^(?:'([^'\\$]*)'|"([^"\\$]*)")$""")
# keys of inline values a Hydra compose reads as something else than a parameter
_HYDRA_KEYS = {"hydra", "defaults", "_self_"}
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class PlainOverride:
    """``key=value`` where ``key`` exists: the part of Hydra's ``Override`` that mlbuild reads
    (:func:`~mlbuild.params.overrides.route`, :func:`~mlbuild.params.files.apply_overrides`)."""

    input_line: str
    key_or_group: str
    parsed: str | int | float | bool | None
    package: None = None

    def value(self) -> str | int | float | bool | None:
        return self.parsed

    def is_add(self) -> bool:
        return False

    def is_force_add(self) -> bool:
        return False

    def is_delete(self) -> bool:
        return False

    def is_sweep_override(self) -> bool:
        return False

    def get_key_element(self) -> str:
        return self.key_or_group


def parse_plain(line: str) -> PlainOverride | None:
    """``line`` read as Hydra would, or ``None`` when Hydra's grammar must read it."""
    # fullmatch throughout: ``$`` also matches before a final newline, which Hydra's lexer refuses
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    key, text = match.groups()
    value: str | int | float | bool | None
    if _INT.fullmatch(text):
        value = int(text)
    elif _FLOAT.fullmatch(text):
        value = float(text)
    elif text in _CONSTANTS:
        value = _CONSTANTS[text]
    elif _WORD.fullmatch(text) and text.lower() not in _NOT_TEXT:
        value = text
    else:
        quoted = _QUOTED.fullmatch(text)
        if quoted is None:
            return None
        value = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
        if value == "???":
            return None  # OmegaConf reads even a quoted '???' as a missing mandatory value
    return PlainOverride(line, key, value)


def parse_all(lines: list[str]) -> list[PlainOverride] | None:
    """Every line read as plain, or ``None`` when any needs Hydra (or sets a key twice, which
    Hydra decides)."""
    parsed = []
    for line in lines:
        override = parse_plain(line)
        if override is None:
            return None
        parsed.append(override)
    if len({o.key_or_group for o in parsed}) != len(parsed):
        return None
    return parsed


def compose_plain(values: Mapping[str, Any], lines: list[str]) -> dict[str, Any] | None:
    """What a Hydra compose of inline ``values`` with overrides ``lines`` makes of them, or
    ``None`` when only Hydra can tell: an override that is not plain or names no existing
    scalar, or values that Hydra reads as more than data (``${…}``, ``???``, a ``defaults``
    list, the ``hydra`` node, keys that are not plain words)."""
    if not _data_only(values) or any(key in _HYDRA_KEYS for key in values):
        return None
    parsed = parse_all(lines)
    if parsed is None:
        return None
    tree: dict[str, Any] = _copy(dict(values))
    for override in parsed:
        *parents, leaf = override.key_or_group.split(".")
        node: Any = tree
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            return None  # a new key, or through a non-mapping: Hydra's error
        if isinstance(node[leaf], dict | list):
            return None  # a mapping or list replaced by a scalar: Hydra merges or refuses
        node[leaf] = override.parsed
    return tree


def inline_sweeper() -> SweeperInfo:
    """The sweeper a compose of inline values reports: Hydra's basic one, with no params."""
    return {"target": BASIC_SWEEPER, "choice": "basic", "params": {}}


def _data_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and _SAFE_KEY.match(k) is not None and _data_only(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_data_only(v) for v in value)
    if isinstance(value, str):
        return "${" not in value and value != "???"
    return value is None or isinstance(value, bool | int | float)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
