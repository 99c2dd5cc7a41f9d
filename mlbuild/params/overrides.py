"""Hydra's override grammar: parse and check overrides, send each to the source that owns its key,
and expand ``--multirun`` sweeps (with the basic sweeper's ``hydra.sweeper.params``).

Parsing imports Hydra's grammar (~0.15 s), so it happens only when there are overrides that are
not plain ``key=value`` lines (:mod:`mlbuild.params.plain` reads those as Hydra does).
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from mlbuild.errors import OverrideError

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


class SweeperInfo(TypedDict):
    """The sweeper a Hydra config selects, as the compiled graph keeps it."""

    target: str  # its class (``_target_``)
    choice: str  # the ``hydra/sweeper`` option (``basic``, ``optuna``)
    params: dict[str, str]  # ``hydra.sweeper.params``: key → sweep (``0.1,0.01``)


def parse_overrides(overrides: list[str]) -> list[Any]:
    """Hydra ``Override`` objects (plain ones when every line is ``key=value`` of a scalar:
    :mod:`mlbuild.params.plain`); raises :class:`OverrideError` naming the bad one."""
    from mlbuild.params.plain import parse_all

    simple = parse_all(overrides)
    if simple is not None:
        return simple
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except OverrideParseException as exc:
            raise OverrideError(
                f"override '{line}' is not valid Hydra syntax: {first_line(str(exc))}; "
                "expected key=value, +key=value, ++key=value or ~key"
            ) from None
    return parsed


def check_overrides(overrides: list[str]) -> None:
    """Parse ``overrides`` with Hydra's grammar; sweeps are allowed only through ``expand``."""
    from mlbuild.params.plain import parse_plain

    if all(parse_plain(line) is not None for line in overrides):
        return  # plain key=value: valid, and never a sweep
    for parsed in parse_overrides(overrides):
        if parsed.is_sweep_override():
            raise OverrideError(
                f"override '{parsed.input_line}' is a sweep; pass --multirun to run one "
                "combination after another"
            )


def sweeps(overrides: list[str]) -> list[str]:
    """The overrides of ``overrides`` that are sweeps (``a=1,2``)."""
    return [o.input_line for o in parse_overrides(overrides) if o.is_sweep_override()]


def expand_sweeps(
    overrides: list[str], sweeper: Mapping[str, Any] | None = None
) -> list[list[str]]:
    """Every combination of a ``--multirun`` sweep: ``a=1,2 b=x`` → ``[[a=1, b=x], [a=2, b=x]]``.

    As Hydra's basic sweeper does, the config's ``hydra.sweeper.params`` come first and an
    override of the same key on the command line replaces it (keeping its place). Any other
    sweeper is refused: mlbuild would run something else than what the config asks for.
    """
    if sweeper is not None and sweeper["target"] != BASIC_SWEEPER:
        raise OverrideError(_refuse(sweeper))
    lines = [f"{k}={v}" for k, v in sweeper["params"].items()] if sweeper else []
    choices: dict[str, list[str]] = {}
    for parsed in parse_overrides([*lines, *overrides]):
        key = parsed.get_key_element()
        if parsed.is_sweep_override():
            if not parsed.is_discrete_sweep():
                raise OverrideError(
                    f"override '{parsed.input_line}': only choice sweeps (a,b,c and "
                    "range(...)) can be expanded"
                )
            choices[key] = [f"{key}={value}" for value in parsed.sweep_string_iterator()]
        else:
            choices[key] = [parsed.input_line]
    return [list(combo) for combo in itertools.product(*choices.values())]


def _refuse(sweeper: Mapping[str, Any]) -> str:
    what = (
        "Hydra's Optuna sweeper"
        if "optuna" in sweeper["target"].lower()
        else f"the sweeper {sweeper['target']}"
    )
    return (
        f"--multirun: the Hydra config selects {what} (hydra/sweeper: {sweeper['choice']}), "
        "which mlbuild does not run: a search is not built yet, and a plain sweep would not be "
        "the search the config asks for; drop --multirun for one run of the config's values, "
        "or list the values to try, on the command line (train.lr=0.1,0.01) or in "
        "hydra.sweeper.params with the basic sweeper"
    )


@dataclass
class Routed:
    """Overrides sent to the source that owns their key."""

    files: dict[str, list[Any]] = field(default_factory=dict)  # params file → its overrides
    composed: list[str] = field(default_factory=list)  # for the Hydra tree or inline values


def route(
    parsed: list[Any],
    owners: dict[str, str],
    *,
    first: str | None,
    composed: bool,
    known: list[str],
) -> Routed:
    """Send each parsed override to the params file owning its top-level key (``owners``), else
    to the Hydra tree or inline values when the recipe has them (``composed``), else a new key to
    the ``first`` params file. Raises :class:`OverrideError` for a key that exists nowhere."""
    routed = Routed()
    for override in parsed:
        top = re.split(r"[./@]", override.key_or_group, maxsplit=1)[0]
        owner = owners.get(top)
        if owner is None and not composed:
            if first is None or not (override.is_add() or override.is_force_add()):
                raise OverrideError(
                    no_parameter(
                        override.input_line,
                        override.key_or_group,
                        known,
                        adding=not override.is_delete(),
                    )
                )
            owner = first
        if owner is None:
            routed.composed.append(override.input_line)
        else:
            routed.files.setdefault(owner, []).append(override)
    return routed


def no_parameter(line: str, key: str, known: list[str], *, adding: bool = True) -> str:
    """The message for an override of a key that does not exist."""
    hint = f"; to add a new key use +{line.lstrip('+')}" if adding else ""
    return (
        f"cannot apply override '{line}': there is no parameter '{key}'"
        f"{suggest(key, [k for k in known if k != key])}{hint}"
    )


def explain(
    message: str, overrides: list[str], known_with: Callable[[list[str]], list[str]]
) -> str:
    """Hydra's message, plus a did-you-mean when it names a key that does not exist.

    ``known_with(overrides)`` lists the keys of the config composed with those overrides, so a
    suggestion accounts for group choices made on the same command line (``model=tree``).
    """
    text = first_line(message)
    match = re.search(r"Could not override '([^']+)'", message) or re.search(
        r"Could not delete from config. '([^']+)' does not exist", message
    )
    if match:
        key = match.group(1)
        line = next((o for o in overrides if key in o), key)
        try:
            known = known_with([o for o in overrides if o != line])
        except Exception:  # the other overrides fail too: suggest from the base config
            known = known_with([])
        return no_parameter(line, key, known, adding=not line.startswith("~"))
    options = re.search(r"Available options in '([^']+)':\n((?:\s+\S+\n?)+)", message)
    if options:
        choices = ", ".join(options.group(2).split())
        text += f"; options for '{options.group(1)}': {choices}"
    return f"cannot apply overrides {' '.join(overrides)}: {text}"


def suggest(key: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


# a value Hydra's grammar reads back as the same string: no quotes needed
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_READS_AS_OTHER = {"true", "false", "null", "nan", "inf", "-inf", "+inf"}


def override_value(value: str | int | float | bool | None) -> str:
    """``value`` in Hydra's override grammar: ``0.001``, ``true``, ``null``, ``tree``, or a quoted
    string where plain text would read as something else (``'1'``, ``'a b'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if _PLAIN.match(value) and value.lower() not in _READS_AS_OTHER:
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
