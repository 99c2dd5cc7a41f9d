"""Resolve a composed config key by key, and record the environment variables it reads.

A real Hydra tree holds keys no step reads (``${oc.env:WANDB_KEY}``, ``???`` values meant for
another entry point). Resolving the whole tree at once fails on the first of them; here each leaf
is resolved on its own, a failure is kept as that key's error, and only a step that reads the key
is stopped by it (``mlbuild.graph`` decides). Every ``${oc.env:VAR}`` a leaf reads is logged, so
the compiled graph can be keyed on those variables' values.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlbuild.params.files import plain


@dataclass
class Leaves:
    """A config resolved leaf by leaf."""

    params: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # dotted key → why it cannot resolve
    env: dict[str, list[str]] = field(default_factory=dict)  # dotted key → env vars it read


class EnvLog:
    """The names of the environment variables ``${oc.env:…}`` looked up, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def read_since(self, mark: int) -> list[str]:
        return sorted(set(self.names[mark:]))


@contextlib.contextmanager
def logging_env() -> Iterator[EnvLog]:
    """Replace OmegaConf's ``oc.env`` resolver, while the block runs, by one that logs the names
    it is asked for (set or not: setting an unset variable must invalidate the graph too)."""
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    log = EnvLog()

    def env(key: str, *default: Any) -> Any:
        log.names.append(key)
        return oc.env(key, *default)

    OmegaConf.register_new_resolver("oc.env", env, replace=True)
    try:
        yield log
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)


def resolve_leaves(cfg: Any, log: EnvLog, *, skip: frozenset[str] = frozenset()) -> Leaves:
    """Every leaf of ``cfg`` (a ``DictConfig``) resolved, except the top-level keys in ``skip``."""
    found = Leaves()
    _walk(cfg, "", found.params, found, log, skip)
    return found


def _walk(
    node: Any, prefix: str, out: dict[str, Any], found: Leaves, log: EnvLog, skip: frozenset[str]
) -> None:
    from omegaconf import DictConfig, OmegaConf

    for key in node:
        dotted = f"{prefix}{key}"
        if not prefix and key in skip:
            continue
        mark = len(log.names)
        try:
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not (
                child._is_interpolation() or child._is_none() or child._is_missing()
            ):
                inner: dict[str, Any] = {}
                out[str(key)] = inner
                _walk(child, f"{dotted}.", inner, found, log, skip)
                continue
            value = node[key]
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
            out[str(key)] = plain(value)
        # resolving runs resolvers (OmegaConf's, Hydra's) over user data: whatever goes wrong is
        # this key's problem, reported if a step reads it
        except Exception as exc:
            found.errors[dotted] = reason(exc)
        read = log.read_since(mark)
        if read:
            found.env[dotted] = read


def reason(exc: Exception) -> str:
    """Why a key does not resolve, in a user's words."""
    text = str(exc).strip()
    unset = re.search(r"Environment variable '([^']+)' not found", text)
    if unset:
        name = unset.group(1)
        return (
            f"environment variable {name} is not set; export it, or give a default: "
            f"${{oc.env:{name},DEFAULT}}"
        )
    if type(exc).__name__ == "MissingMandatoryValue":
        return "it is ??? (mandatory) and has no value; set it in the config or with an override"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.rstrip(".")
