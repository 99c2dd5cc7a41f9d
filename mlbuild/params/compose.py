"""Compose a Hydra config tree, or inline values, as Hydra users run it.

The config is composed with Hydra's compose API and the Hydra node (``return_hydra_config``), so
``${hydra:…}`` interpolations resolve. Hydra's output directory (``hydra.run.dir``,
``hydra.runtime.output_dir``) is mapped into the workspace: a time-stamped one (Hydra's default,
``outputs/${now:…}``) becomes the workspace root, where a step runs; a fixed relative one is kept;
one outside the workspace is refused. ``hydra.runtime.cwd`` is the workspace root too, written
``.`` so that fingerprints do not depend on where the clone is. The ``hydra`` node itself is not
a parameter.

Inline values are registered in Hydra's ConfigStore and composed the same way, so both get
exactly Hydra's override grammar and semantics. Hydra is imported only here, and only when a
composition is not already cached (see ``mlbuild.graph.compiled``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild import paths
from mlbuild.errors import OverrideError, Problem, RecipeError
from mlbuild.params.lazy import logging_env, resolve_leaves
from mlbuild.params.locate import loaded_files, locate_choice, locate_key
from mlbuild.params.overrides import SweeperInfo, check_overrides, explain, first_line
from mlbuild.params.selection import flatten

_INLINE_NAME = "__mlbuild_inline_params__"
# Hydra plugins mlbuild knows by the config they register → the distribution to install
PLUGINS = {
    "hydra/job_logging/colorlog": "hydra-colorlog",
    "hydra/hydra_logging/colorlog": "hydra-colorlog",
    "hydra/sweeper/optuna": "hydra-optuna-sweeper",
    "hydra/sweeper/ax": "hydra-ax-sweeper",
    "hydra/sweeper/nevergrad": "hydra-nevergrad-sweeper",
    "hydra/launcher/joblib": "hydra-joblib-launcher",
    "hydra/launcher/ray": "hydra-ray-launcher",
    "hydra/launcher/ray_aws": "hydra-ray-launcher",
    "hydra/launcher/rq": "hydra-rq-launcher",
    "hydra/launcher/submitit_local": "hydra-submitit-launcher",
    "hydra/launcher/submitit_slurm": "hydra-submitit-launcher",
}


@dataclass
class Composed:
    """A composed config, resolved key by key."""

    params: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)  # key → why, and where it is written
    env: dict[str, list[str]] = field(default_factory=dict)  # key → env vars it read
    env_read: list[str] = field(default_factory=list)  # every env var read
    # the tree's config files (relative): those Hydra used when the tree is the workspace root,
    # else every one in it
    files: list[str] = field(default_factory=list)
    sweeper: SweeperInfo | None = None
    output_dir: str | None = None  # Hydra's output dir, relative to the workspace


def compose_config(
    *,
    config_dir: Path | None,
    config_name: str = "config",
    inline: dict[str, Any] | None = None,
    overrides: list[str],
    root: Path,
    problem: Callable[[str], Problem],
    job_name: str = "mlbuild",
    inline_where: Callable[[str], str | None] | None = None,
) -> Composed:
    """Compose ``config_dir``/``config_name`` (or ``inline``) with ``overrides``.

    Raises :class:`OverrideError` for a bad override and :class:`RecipeError` for a config that
    does not compose (a missing plugin, a missing primary config); ``problem(message)`` places
    the latter at the recipe's ``params``. Keys that do not resolve are returned in ``errors``,
    not raised.
    """
    from hydra import compose, initialize, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    check_overrides(overrides)
    if config_dir is not None and not config_dir.is_dir():
        raise _config_error(f"Hydra config directory {config_dir} does not exist", problem)
    GlobalHydra.instance().clear()
    try:
        with logging_env() as log:
            if config_dir is not None:
                _check_config_files(config_dir)
                context: Any = initialize_config_dir(
                    config_dir=str(config_dir.resolve()), version_base=None, job_name=job_name
                )
                name = config_name
            else:
                ConfigStore.instance().store(name=_INLINE_NAME, node=inline or {})
                context = initialize(config_path=None, version_base=None, job_name=job_name)
                name = _INLINE_NAME
            with context:

                def attempt(lines: list[str]) -> Any:
                    return compose(config_name=name, overrides=lines, return_hydra_config=True)

                try:
                    cfg = attempt(list(overrides))
                except (HydraException, OmegaConfBaseException) as exc:
                    raise _composition_error(
                        exc, attempt, overrides, config_dir, config_name, root, problem
                    ) from None
                output_dir = _map_output_dir(cfg, root, problem)
                HydraConfig.instance().set_config(cfg)
                sweeper = _sweeper(cfg)
                leaves = resolve_leaves(cfg, log, skip=frozenset({"hydra"}))
                # which files went in costs a second pass over the defaults tree (a third of the
                # composition): only to say where a broken key is written, or to know what to
                # hash when the tree is the whole workspace
                at_root = config_dir is not None and config_dir.resolve() == root.resolve()
                loaded = (
                    loaded_files(config_dir, config_name, list(overrides))
                    if config_dir is not None and (leaves.errors or at_root)
                    else []
                )
            files = (
                [entry.file for entry in loaded]
                if at_root
                else sorted(config_dir.rglob("*.yaml"))
                if config_dir is not None
                else []
            )
            composed = Composed(
                params=leaves.params,
                env=leaves.env,
                env_read=sorted(set(log.names)),
                files=[_relative(file, root) for file in files],
                sweeper=sweeper,
                output_dir=output_dir,
            )
            for key, why in leaves.errors.items():
                where = locate_key(key, loaded, root) if config_dir else None
                if where is None and inline_where is not None:
                    where = inline_where(key)
                composed.errors[key] = f"{why} (written at {where})" if where else why
            return composed
    except (HydraException, OmegaConfBaseException) as exc:  # Hydra's set-up, or the sweeper
        raise _config_error(f"Hydra config: {first_line(str(exc))}", problem) from None
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None


def _check_config_files(config_dir: Path) -> None:
    """Refuse a config file over mlbuild's YAML limits (an alias bomb, say) before Hydra, which
    has none, reads it. Every ``.yaml`` below the directory is checked: the compiled-graph cache
    hashes them all anyway, and which ones Hydra reads depends on the overrides."""
    from mlbuild.recipe import check_yaml_limits

    for folder, _, files in os.walk(config_dir):  # symlinked directories are not entered
        for name in sorted(files):
            if name.endswith(".yaml"):
                path = Path(folder, name)
                _refuse_special(path)
                check_yaml_limits(path, os.path.relpath(path))


def _refuse_special(path: Path) -> None:
    """A config file that is a FIFO (or a socket, a device) as the user's error: opening a FIFO
    waits for a writer for ever, and `plan` hung there, before Hydra (which would too)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # (a dangling symlink: Hydra says so if it is the one it reads)
    if not stat.S_ISREG(mode):
        raise RecipeError(
            [
                Problem(
                    os.path.relpath(path),
                    None,
                    None,
                    "",
                    "is not a regular file (a FIFO, socket or device); mlbuild never opens "
                    "one (it could wait for ever): make it a file or move it out of the "
                    "config directory",
                )
            ]
        )


def needs_hydra(inline: dict[str, Any] | None, overrides: list[str]) -> bool:
    """Whether composing inline params needs Hydra at all: only for overrides or ``${...}``.

    Without either, Hydra would return the mapping unchanged; skipping it saves its ~0.5 s
    import when a recipe's inline params were edited.
    """
    return bool(overrides) or "${" in repr(inline)


def _map_output_dir(cfg: Any, root: Path, problem: Callable[[str], Problem]) -> str:
    """Point Hydra's output dir (and its record of the cwd) into the workspace; return it."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg.hydra.run, resolve=False).get("dir")  # type: ignore[union-attr]
    mapped = "."
    if isinstance(raw, str) and "${now:" not in raw:
        try:
            value = str(cfg.hydra.run.dir)
        except Exception as exc:  # the user's interpolation; say which key
            raise _config_error(f"hydra.run.dir: {first_line(str(exc))}", problem) from None
        full = os.path.normpath(os.path.join(root, value))
        rel = PurePosixPath(os.path.relpath(full, root)).as_posix()
        if rel == ".." or rel.startswith("../"):
            raise _config_error(
                f"hydra.run.dir is {value}, outside the workspace; mlbuild keeps Hydra's output "
                "directory inside it (steps run at the workspace root): use a relative path",
                problem,
            )
        if rel != ".":
            # mlbuild makes this directory before a step runs: never in .git or .mlbuild, nor
            # through a symlink that leads there or out
            try:
                rel = paths.Fence(root).check(rel, writes=True)
            except paths.UnsafePathError as exc:
                raise _config_error(f"hydra.run.dir: {exc}", problem) from None
        mapped = rel
    cfg.hydra.run.dir = mapped
    cfg.hydra.runtime.output_dir = mapped
    cfg.hydra.runtime.cwd = "."
    return mapped


def _sweeper(cfg: Any) -> SweeperInfo | None:
    from omegaconf import OmegaConf

    node = cfg.hydra.get("sweeper")
    if node is None:
        return None
    params = OmegaConf.to_container(node, resolve=True).get("params")  # type: ignore[union-attr]
    return SweeperInfo(
        target=str(node.get("_target_", "")),
        choice=str(cfg.hydra.runtime.choices.get("hydra/sweeper", "")),
        params={str(k): str(v) for k, v in (params or {}).items()},
    )


def _composition_error(
    exc: Exception,
    attempt: Callable[[list[str]], Any],
    overrides: list[str],
    config_dir: Path | None,
    config_name: str,
    root: Path,
    problem: Callable[[str], Problem],
) -> Exception:
    """The error to raise when composing failed: a missing plugin, a broken config, or a bad
    override (when the config composes without the overrides)."""
    import re

    message = str(exc)
    missing = re.search(r"Could not find '(hydra/[^']+)'", message)
    if missing:
        return _missing_plugin(missing.group(1), overrides, config_dir, root, problem)
    if config_dir is not None and not (config_dir / f"{config_name}.yaml").exists():
        return _config_error(
            f"Hydra config {config_dir}: no primary config {config_name}.yaml", problem
        )
    try:
        attempt([])
    except Exception:  # the config fails on its own: not the overrides' fault
        where = f"in {_relative(config_dir, root)}" if config_dir else "inline"
        return _config_error(f"Hydra config {where}: {first_line(message)}", problem)
    if not overrides:
        return _config_error(f"Hydra config: {first_line(message)}", problem)
    return OverrideError(explain(message, overrides, lambda others: _keys(attempt(others))))


def _missing_plugin(
    option: str,
    overrides: list[str],
    config_dir: Path | None,
    root: Path,
    problem: Callable[[str], Problem],
) -> Exception:
    group, _, name = option.rpartition("/")
    package = PLUGINS.get(option)
    install = (
        f"install it with `pip install {package}`"
        if package
        else "install the Hydra plugin that provides it"
    )
    what = f"a config of a Hydra plugin that is not installed; {install}"
    if group == "hydra/sweeper":
        what += " (mlbuild runs one job with it: --multirun sweeps with the basic sweeper only)"
    located = locate_choice(group, name, config_dir, root) if config_dir else None
    if located is not None:
        return RecipeError([located._replace(message=f"{located.message}, {what}")])
    if any(group in line for line in overrides):
        return OverrideError(f"the overrides select {group}={name}, {what}")
    return _config_error(f"{option} is {what}", problem)


def _keys(cfg: Any) -> list[str]:
    from omegaconf import OmegaConf

    tree = OmegaConf.to_container(cfg)
    if not isinstance(tree, dict):
        return []
    return list(flatten({str(k): v for k, v in tree.items() if k != "hydra"}))


def _config_error(message: str, problem: Callable[[str], Problem]) -> RecipeError:
    return RecipeError([problem(message)])


def _relative(path: Path | None, root: Path) -> str:
    if path is None:
        return ""
    try:
        return PurePosixPath(os.path.relpath(path.resolve(), root.resolve())).as_posix()
    except ValueError:
        return str(path)
