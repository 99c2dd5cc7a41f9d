"""A recipe's parameters from all their sources: params files, a Hydra tree or inline values.

::

    params files ──read──┐                       ┌─▶ file's own overrides ─▶ edited text to write
                         ├─ route each override ─┤
    Hydra tree / values ─┘   by its top key      └─▶ the rest ─▶ Hydra compose ─▶ keys resolved
                                                                                  one by one
    ─▶ one namespace (a top-level key comes from exactly one source)

Without overrides, params files and inline values without ``${…}`` need no Hydra at all; nor do
plain ``key=value`` overrides of existing scalars (:mod:`mlbuild.params.plain`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.errors import Problem, RecipeError
from mlbuild.params.compose import Composed, compose_config, needs_hydra
from mlbuild.params.files import ParamsFile, apply_overrides, plain, read_params_file
from mlbuild.params.overrides import SweeperInfo, check_overrides, parse_overrides, route
from mlbuild.params.plain import compose_plain, inline_sweeper
from mlbuild.params.selection import flatten

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ParamSpec:
    """The recipe's ``params:`` section, whatever its shape, and where each part is written."""

    files: list[str] = field(default_factory=list)
    file_keys: list[KeyPath] = field(default_factory=list)  # where each file is named
    config_dir: str | None = None
    config_name: str = "config"
    values: dict[str, Any] | None = None
    values_key: KeyPath = ("params",)


@dataclass
class Resolved:
    """Everything the graph needs to know about the parameters of one composition."""

    params: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)  # key → why it does not resolve
    env: dict[str, list[str]] = field(default_factory=dict)  # key → env vars it read
    env_read: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # files and dirs read, workspace-relative
    writes: dict[str, str] = field(default_factory=dict)  # params file → text with overrides
    tree_files: list[str] = field(default_factory=list)  # the Hydra tree's files used
    sweeper: SweeperInfo | None = None
    output_dir: str | None = None


Locate = Callable[[KeyPath, str], Problem]


def resolve_params(
    spec: ParamSpec,
    *,
    root: Path,
    recipe: Path,
    overrides: list[str],
    problem: Locate,
    job_name: str = "mlbuild",
) -> Resolved:
    """Read, override and compose the parameters ``spec`` describes.

    ``problem(key_path, message)`` locates a problem in the recipe. Raises :class:`RecipeError`
    for a bad source and :class:`~mlbuild.errors.OverrideError` for a bad override.
    """
    files = [
        read_params_file(root, raw, recipe, _at(problem, key))
        for raw, key in zip(spec.files, spec.file_keys, strict=True)
    ]
    owners = _owners(files, spec, problem)
    resolved = Resolved(params={}, inputs=[f.path for f in files])
    composed_lines: list[str] = []
    if overrides:
        check_overrides(overrides)
        known = [k for f in files for k in flatten(f.tree)] + list(flatten(spec.values or {}))
        routed = route(
            parse_overrides(overrides),
            owners,
            first=files[0].path if files else None,
            composed=spec.config_dir is not None or spec.values is not None,
            known=known,
        )
        composed_lines = routed.composed
        for pf in files:
            tree, text = apply_overrides(pf, routed.files.get(pf.path, []), known)
            resolved.params.update(tree)
            if text is not None:
                resolved.writes[pf.path] = text
    else:
        for pf in files:
            resolved.params.update(pf.tree)
    composed = _compose(spec, composed_lines, root, problem, job_name)
    if composed is not None:
        _merge(resolved, composed, owners, spec, root, problem)
    return resolved


def _at(problem: Locate, key: KeyPath) -> Callable[[str], Problem]:
    return lambda message: problem(key, message)


def _owners(files: list[ParamsFile], spec: ParamSpec, problem: Locate) -> dict[str, str]:
    """Top-level key → the params file that holds it; a key in two files is an error."""
    owners: dict[str, str] = {}
    problems = []
    for pf, key_path in zip(files, spec.file_keys, strict=True):
        for key in pf.tree:
            if key in owners:
                problems.append(
                    problem(
                        key_path,
                        f"parameter '{key}' is in both {owners[key]} and {pf.path}; a top-level "
                        "key comes from one source",
                    )
                )
            owners.setdefault(key, pf.path)
    if problems:
        raise RecipeError(problems)
    return owners


def _compose(
    spec: ParamSpec, overrides: list[str], root: Path, problem: Locate, job_name: str
) -> Composed | None:
    def at_params(message: str) -> Problem:
        return problem(("params",), message)

    if spec.config_dir is not None:
        config_dir = _inside(root, spec.config_dir)
        if config_dir is None:
            raise RecipeError(
                [
                    problem(
                        ("params", "config_dir"),
                        f"Hydra config directory '{spec.config_dir}' is outside the workspace",
                    )
                ]
            )
        return compose_config(
            config_dir=root / config_dir,
            config_name=spec.config_name,
            overrides=overrides,
            root=root,
            problem=at_params,
            job_name=job_name,
        )
    if spec.values is None:
        return None
    if not needs_hydra(spec.values, overrides):
        return Composed(params=plain(spec.values))
    fast = compose_plain(spec.values, overrides)
    if fast is not None:  # what Hydra's compose returns for these (tests/params/test_plain.py)
        return Composed(params=plain(fast), sweeper=inline_sweeper(), output_dir=".")

    def where(key: str) -> str | None:
        found = problem((*spec.values_key, *key.split(".")), "")
        return f"{found.file}:{found.line}:{found.column}" if found.line else None

    return compose_config(
        config_dir=None,
        inline=spec.values,
        overrides=overrides,
        root=root,
        problem=at_params,
        job_name=job_name,
        inline_where=where,
    )


def _merge(
    resolved: Resolved,
    composed: Composed,
    owners: dict[str, str],
    spec: ParamSpec,
    root: Path,
    problem: Locate,
) -> None:
    taken = [
        key
        for key in [*composed.params, *(k.split(".")[0] for k in composed.errors)]
        if key in owners
    ]
    if taken:
        source = spec.config_dir if spec.config_dir is not None else "values"
        raise RecipeError(
            [
                problem(
                    ("params",),
                    f"parameter '{taken[0]}' is in both {owners[taken[0]]} and {source}; a "
                    "top-level key comes from one source",
                )
            ]
        )
    resolved.params.update(composed.params)
    resolved.errors = composed.errors
    resolved.env = composed.env
    resolved.env_read = composed.env_read
    resolved.tree_files = composed.files
    resolved.sweeper = composed.sweeper
    resolved.output_dir = composed.output_dir
    config_dir = _inside(root, spec.config_dir) if spec.config_dir is not None else None
    if config_dir is not None:
        # the tree's directory, hashed whole (a new optional config counts) — unless it is the
        # workspace itself, whose outputs change on every run: then the files Hydra used
        resolved.inputs += [config_dir] if config_dir != "." else composed.files


def _inside(root: Path, raw: str) -> str | None:
    """``raw`` relative to the workspace, symlinks resolved, or ``None`` when outside it."""
    real = (root / raw).resolve()
    try:
        return real.relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return None
