"""Compose a recipe's parameters with Hydra and apply command-line overrides.

Inline parameters are registered in Hydra's ConfigStore and composed through the same compose API
as a config directory, so both get exactly Hydra's override grammar and semantics (``key=v``,
``+key=v``, ``++key=v``, ``~key``, group selection, ``${...}`` interpolation). Hydra is imported
only here, and only when a composition is not already cached (see ``mlbuild.graph.compiled``).
"""

from __future__ import annotations

import difflib
import itertools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlbuild.errors import OverrideError, Problem, RecipeError
from mlbuild.params.selection import flatten

_INLINE_NAME = "__mlbuild_inline_params__"


def compose_params(
    *,
    inline: dict[str, Any] | None,
    config_dir: Path | None,
    config_name: str = "config",
    overrides: list[str],
    recipe_file: str,
) -> dict[str, Any]:
    """Resolved parameters (interpolations applied) as plain nested dicts.

    Exactly one of ``inline`` and ``config_dir`` is used; with neither, the parameters start empty.
    Raises :class:`OverrideError` for a bad override and :class:`RecipeError` for a bad config.
    """
    from hydra import compose, initialize, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_overrides(overrides)
    GlobalHydra.instance().clear()
    try:
        if config_dir is not None:
            if not config_dir.is_dir():
                raise RecipeError(
                    [
                        Problem(
                            recipe_file,
                            None,
                            None,
                            "params.config_dir",
                            f"Hydra config directory {config_dir} does not exist",
                        )
                    ]
                )
            _check_config_files(config_dir)
            context: Any = initialize_config_dir(
                config_dir=str(config_dir.resolve()), version_base=None
            )
            name = config_name
        else:
            ConfigStore.instance().store(name=_INLINE_NAME, node=inline or {})
            context = initialize(config_path=None, version_base=None)
            name = _INLINE_NAME
        with context:
            try:
                cfg = compose(config_name=name, overrides=list(overrides))
                resolved = OmegaConf.to_container(cfg, resolve=True)
            except (HydraException, OmegaConfBaseException) as exc:
                if isinstance(exc, MissingConfigException) and config_dir is not None:
                    missing_base = not (config_dir / f"{config_name}.yaml").exists()
                    if missing_base:
                        raise _config_error(exc, recipe_file, config_dir) from None
                raise OverrideError(
                    _explain(str(exc), overrides, lambda others: _keys(compose(name, others)))
                ) from None
    except OverrideParseException as exc:
        raise OverrideError(f"bad override: {_first_line(str(exc))}") from None
    except (HydraException, OmegaConfBaseException) as exc:
        raise _config_error(exc, recipe_file, config_dir) from None
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(resolved, dict)
    return {str(k): v for k, v in resolved.items()}


def _check_config_files(config_dir: Path) -> None:
    """Refuse a config file over mlbuild's YAML limits (an alias bomb, say) before Hydra, which
    has none, reads it. Every ``.yaml`` below the directory is checked: the compiled-graph cache
    hashes them all anyway, and which ones Hydra reads depends on the overrides."""
    from mlbuild.recipe import check_yaml_limits

    for folder, _, files in os.walk(config_dir):  # symlinked directories are not entered
        for name in sorted(files):
            if name.endswith(".yaml"):
                path = Path(folder, name)
                check_yaml_limits(path, os.path.relpath(path))


def needs_hydra(inline: dict[str, Any] | None, overrides: list[str]) -> bool:
    """Whether composing inline params needs Hydra at all: only for overrides or ``${...}``.

    Without either, Hydra would return the mapping unchanged; skipping it saves its ~0.5 s
    import when a recipe's inline params were edited.
    """
    return bool(overrides) or "${" in repr(inline)


def check_overrides(overrides: list[str]) -> None:
    """Parse ``overrides`` with Hydra's grammar; sweeps are allowed only through ``expand``."""
    for parsed in _parse(overrides):
        if parsed.is_sweep_override():
            raise OverrideError(
                f"override '{parsed.input_line}' is a sweep; pass --multirun to run one "
                "combination after another"
            )


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """Every combination of a ``--multirun`` sweep: ``a=1,2 b=x`` → ``[[a=1, b=x], [a=2, b=x]]``."""
    choices: list[list[str]] = []
    for parsed in _parse(overrides):
        key = parsed.get_key_element()
        if parsed.is_sweep_override():
            if not parsed.is_discrete_sweep():
                raise OverrideError(
                    f"override '{parsed.input_line}': only choice sweeps (a,b,c and "
                    "range(...)) can be expanded"
                )
            choices.append([f"{key}={value}" for value in parsed.sweep_string_iterator()])
        else:
            choices.append([parsed.input_line])
    return [list(combo) for combo in itertools.product(*choices)]


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except OverrideParseException as exc:
            raise OverrideError(
                f"override '{line}' is not valid Hydra syntax: {_first_line(str(exc))}; "
                "expected key=value, +key=value, ++key=value or ~key"
            ) from None
    return parsed


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _explain(
    message: str, overrides: list[str], known_with: Callable[[list[str]], list[str]]
) -> str:
    """Hydra's message, plus a did-you-mean when it names a key that does not exist.

    ``known_with(overrides)`` lists the keys of the config composed with those overrides, so a
    suggestion accounts for group choices made on the same command line (``model=tree``).
    """
    text = _first_line(message)
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
        hint = "" if line.startswith("~") else f"; to add a new key use +{line.lstrip('+')}"
        return (
            f"cannot apply override '{line}': there is no parameter '{key}'"
            f"{suggest(key, [k for k in known if k != key])}{hint}"
        )
    options = re.search(r"Available options in '([^']+)':\n((?:\s+\S+\n?)+)", message)
    if options:
        choices = ", ".join(options.group(2).split())
        text += f"; options for '{options.group(1)}': {choices}"
    return f"cannot apply overrides {' '.join(overrides)}: {text}"


def _keys(cfg: Any) -> list[str]:
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg)
    return list(flatten({str(k): v for k, v in tree.items()})) if isinstance(tree, dict) else []


def suggest(key: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _config_error(exc: Exception, recipe_file: str, config_dir: Path | None) -> RecipeError:
    where = f"in {config_dir}" if config_dir else "inline"
    return RecipeError(
        [
            Problem(
                recipe_file, None, None, "params", f"Hydra config {where}: {_first_line(str(exc))}"
            )
        ]
    )
