"""Where in a Hydra config tree a key, or a defaults-list choice, is written: ``file:line:col``.

Hydra does not track where a composed key came from; its defaults list does say which config
files were merged, in order, and at which package. The last of them that writes the key is the
one a user has to edit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbuild.errors import Problem, RecipeError


@dataclass(frozen=True)
class Loaded:
    """A config file of the tree that went into the composition."""

    file: Path
    package: str  # where its keys land: "" for the root, "model" for the group model


def loaded_files(config_dir: Path, config_name: str, overrides: list[str]) -> list[Loaded]:
    """The files of ``config_dir`` the composition merged, in merge order (Hydra initialised)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    loader = GlobalHydra.instance().config_loader()
    found = []
    for default in loader.compute_defaults_list(config_name, overrides, RunMode.RUN).defaults:
        if default.config_path is None:
            continue
        file = config_dir / f"{default.config_path}.yaml"
        if file.is_file():
            found.append(Loaded(file, default.package or ""))
    return found


def locate_key(key: str, loaded: list[Loaded], root: Path) -> str | None:
    """``conf/db/pg.yaml:1:6``: where the config that sets ``key`` last writes it."""
    for entry in reversed(loaded):
        package = "" if entry.package == "_global_" else entry.package
        if package and not key.startswith(f"{package}."):
            continue
        inner = key[len(package) + 1 :] if package else key
        loaded_file = _load(entry.file, root)
        if loaded_file is None:
            continue
        source = loaded_file[1]
        path = tuple(inner.split("."))
        position = source.keys.get(path)
        if position is not None:
            return f"{source.file}:{position.line}:{position.column}"
    return None


def locate_choice(group: str, option: str, config_dir: Path, root: Path) -> Problem | None:
    """The defaults-list entry of any file in ``config_dir`` that selects ``group: option``."""
    for file in sorted(config_dir.rglob("*.yaml")):
        loaded_file = _load(file, root)
        if loaded_file is None:
            continue
        data, source = loaded_file
        defaults = data.get("defaults") if isinstance(data, dict) else None
        for index, entry in enumerate(defaults if isinstance(defaults, list) else []):
            if not isinstance(entry, dict):
                continue
            for raw, value in entry.items():
                name = str(raw).removeprefix("override ").strip().lstrip("/")
                if name == group and value == option:
                    found: Problem = source.problem(
                        ("defaults", index, str(raw)), f"selects {group}: {option}", at_key=True
                    )
                    return found._replace(path=f"defaults[{index}]")
    return None


def _load(file: Path, root: Path) -> tuple[Any, Any] | None:
    """The file's data and source map, or ``None`` when it cannot be read (Hydra reports that)."""
    from mlbuild.recipe import load_yaml

    try:
        return load_yaml(file.read_text(encoding="utf-8"), _display(file, root))
    except (OSError, UnicodeDecodeError, RecipeError):
        return None


def _display(file: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(file.resolve(), root.resolve())).as_posix()
    except ValueError:
        return str(file)
