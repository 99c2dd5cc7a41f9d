"""A step's fingerprint, and the explanation of why it differs from the last run.

The fingerprint hashes everything that can change what a step produces: the mlbuild cache format,
what the step does — a command step's resolved command; for a step of another kind, its kind and
its whole ``config`` —, declared env (never secrets), the selected param values (and the hashes of
the environment variables they were resolved from), the content hashes of the deps, the declared
outputs, the Python version, the environment lock file's hash and, for a step not run by the local
executor, the executor's identity (its name and, for a container, the image id).

Components that are absent or default (no env vars read, the local executor) are left out rather
than written empty, so the fingerprints of steps that do not use them stay what they were.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlbuild.cache import DIR_SUFFIX, FORMAT_VERSION, hash_bytes
from mlbuild.graph.model import COMMAND, Graph, StepSpec
from mlbuild.nested import leaves
from mlbuild.params import render

Components = dict[str, Any]


def components(
    graph: Graph,
    step: StepSpec,
    deps: dict[str, str | None],
    lock: str | None,
    data: dict[str, str] | None = None,
    executor: dict[str, str] | None = None,
) -> Components:
    """What the fingerprint of ``step`` is made of; a dep hash of ``None`` is not yet known.

    ``data`` maps the datasets the step reads to their versions (DVC's hash for DVC-tracked data,
    commit and hash for imports, the content hash for plain paths); ``executor`` is the identity
    of the executor it runs on (empty for the local one).
    """
    parts: Components = {"format": FORMAT_VERSION}
    if step.kind == COMMAND:  # as before step kinds: caches made by earlier versions stay valid
        parts["cmd"] = step.config["cmd"]
    else:
        parts["kind"] = step.kind
        parts["config"] = step.config
    parts |= {
        "env": dict(sorted(step.env.items())),
        "params": step.params,
        "deps": dict(sorted(deps.items())),
        "data": dict(sorted((data or {}).items())),
        "outs": [[o.path, o.cache, o.persist] for o in step.outs],
        "python": graph.python,
        "lock": {graph.lock_file: lock} if graph.lock_file else {},
    }
    if step.env_vars:  # only then: the fingerprints of steps reading no env var stay as they were
        parts["env_vars"] = dict(sorted(step.env_vars.items()))
    if graph.isolated:  # a result made in the locked environment is not one made in the caller's
        parts["isolated"] = True
    if executor:
        parts["executor"] = dict(sorted(executor.items()))
    if step.best:  # the params are in "params" too; this names their search, for explain
        parts["best"] = {"search": step.best["search"], "params": step.best["params"]}
    return parts


def fingerprint(parts: Components) -> str:
    return hash_bytes(_ENCODER.encode(parts).encode())


# what ``json.dumps(parts, sort_keys=True, default=str)`` makes, from one encoder: ``dumps``
# builds a new JSONEncoder for every call with arguments (a no-op run asks once per step)
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


DirDetail = Callable[[str], str]  # a directory dep → what changed in it ("2 modified (a, b)")


def explain(
    old: Components | None, new: Components, dir_detail: DirDetail | None = None
) -> list[str]:
    """Why ``new`` differs from ``old``, most specific first: one line per changed input."""
    if old is None:
        return ["never run in this workspace"]
    reasons: list[str] = []
    if old.get("format") != new["format"]:
        reasons.append("mlbuild's cache format changed")
    if old.get("kind") != new.get("kind"):
        reasons.append(f"kind changed: {old.get('kind', 'command')} → {new.get('kind', 'command')}")
    elif old.get("cmd") != new.get("cmd"):
        reasons.append(f"command changed: {_show(old.get('cmd'))} → {_show(new.get('cmd'))}")
    reasons += _mapping_diff(
        "config", old.get("config", {}), new.get("config", {}), values=True, join="."
    )
    reasons += _executor_diff(old.get("executor", {}), new.get("executor", {}))
    reasons += _env_var_diff(old.get("env_vars", {}), new.get("env_vars", {}))
    best, searched = _best_diff(old.get("best"), new.get("best"))
    reasons += best
    params = _mapping_diff("param", old.get("params", {}), new["params"], values=True)
    reasons += [r for r in params if r.split(" ")[1] not in searched]
    reasons += _data_diff(old.get("data", {}), new["data"])
    reasons += _deps_diff(old.get("deps", {}), new["deps"], dir_detail)
    reasons += _mapping_diff("env", old.get("env", {}), new["env"], values=True)
    if old.get("outs") != new["outs"]:
        reasons.append("declared outputs changed")
    if old.get("python") != new["python"]:
        reasons.append(f"environment.python changed: {old.get('python')} → {new['python']}")
    reasons += _mapping_diff("environment lock", old.get("lock", {}), new["lock"], values=False)
    if old.get("isolated", False) != new.get("isolated", False):
        where = "the environment built from the lock" if new.get("isolated") else "the caller's"
        reasons.append(f"environment isolation changed: the step now runs in {where}")
    return reasons


def _executor_diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """``executor changed: local → container``, ``executor image changed: sha256:1f0c… → …``."""
    before, after = old.get("executor", "local"), new.get("executor", "local")
    if before != after:
        return [f"executor changed: {before} → {after}"]
    return [
        f"executor {key} changed: {_short_id(old.get(key))} → {_short_id(value)}"
        for key, value in new.items()
        if key != "executor" and old.get(key) != value
    ]


def _short_id(value: str | None) -> str:
    """An image id (``sha256:`` and 64 hex digits) as ``sha256:1f0c9a2e3b4d…``."""
    if value is None:
        return "none"
    return f"{value[:19]}…" if value.startswith("sha256:") and len(value) > 19 else value


def _best_diff(
    old: dict[str, Any] | None, new: dict[str, Any] | None
) -> tuple[list[str], set[str]]:
    """How the best params a step takes from a search changed, and the param keys that says
    all about (their own "param … changed" lines would repeat it)."""
    if new is None or old == new:
        return [], set()
    search = new["search"]
    if new.get("pending"):
        return [f"takes the best params of search `{search}`, which runs first"], set()
    params: dict[str, Any] = new["params"]
    before: dict[str, Any] = old["params"] if old and old.get("search") == search else {}
    if not before:
        shown = ", ".join(f"{k} {_show(v)}" for k, v in params.items())
        return [f"takes the best params of search `{search}`: {shown}"], set()
    changed = [k for k in params if k not in before or before[k] != params[k]]
    if not changed:
        return [], set()
    shown = ", ".join(
        f"{k} {_show(before[k])} → {_show(params[k])}" if k in before else f"{k} {_show(params[k])}"
        for k in changed
    )
    return [f"best params of search `{search}` changed: {shown}"], set(changed)


def _env_var_diff(old: dict[str, str | None], new: dict[str, str | None]) -> list[str]:
    """Which environment variables behind the step's params changed (values are not shown:
    only their hashes are kept, and the params they feed say the rest)."""
    reasons = []
    for name, digest in new.items():
        if name not in old or old[name] == digest:
            continue  # a variable the params did not read before: the param diff says it
        if digest is None:
            reasons.append(f"env var {name} was unset")
        elif old[name] is None:
            reasons.append(f"env var {name} was set")
        else:
            reasons.append(f"env var {name} changed")
    return reasons


def _data_diff(old: dict[str, str], new: dict[str, str]) -> list[str]:
    reasons = []
    for name, version in new.items():
        if name not in old:
            reasons.append(f"dataset {name} added (version {_short_version(version)})")
        elif old[name] != version:
            change = f"{_short_version(old[name])} → {_short_version(version)}"
            reasons.append(f"dataset {name} changed ({change})")
    reasons += [f"dataset {name} removed" for name in old if name not in new]
    return reasons


def _short_version(version: str) -> str:
    """``commit:md5`` or a bare hash, shortened the way git shows commits."""
    return ":".join(part[:8] for part in version.split(":"))


def _deps_diff(
    old: dict[str, str | None], new: dict[str, str | None], dir_detail: DirDetail | None
) -> list[str]:
    reasons = []
    for path, digest in new.items():
        if digest is None:
            continue  # produced by a step that runs first; judged when that step is done
        if path not in old:
            reasons.append(f"dep {path} added")
        elif old[path] != digest:
            detail = dir_detail(path) if dir_detail and digest.endswith(DIR_SUFFIX) else ""
            change = f"{_short(old[path])} → {_short(digest)}"
            reasons.append(f"dep {path} changed ({change})" + (f": {detail}" if detail else ""))
    reasons += [f"dep {path} removed" for path in old if path not in new]
    return reasons


def _mapping_diff(
    label: str, old: dict[str, Any], new: dict[str, Any], *, values: bool, join: str = " "
) -> list[str]:
    if values:  # name the leaf that changed, not the whole subtree a step selected
        old, new = leaves(old), leaves(new)
    reasons = []
    for key, value in new.items():
        name = f"{label}{join}{key}"
        if key not in old:
            reasons.append(f"{name} added" + (f" (= {_show(value)})" if values else ""))
        elif old[key] != value:
            change = f": {_show(old[key])} → {_show(value)}" if values else ""
            reasons.append(f"{name} changed{change}")
    reasons += [f"{label}{join}{key} removed" for key in old if key not in new]
    return reasons


def describe_dir_change(old: dict[str, str], new: dict[str, str], shown: int = 3) -> str:
    """``2 modified (a.csv, b.csv), 1 added (c.csv)``: what differs between two manifests."""
    groups = {
        "modified": sorted(p for p in old.keys() & new.keys() if old[p] != new[p]),
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
    }
    parts = []
    for label, paths in groups.items():
        if paths:
            names = ", ".join(paths[:shown]) + (", …" if len(paths) > shown else "")
            parts.append(f"{len(paths)} {label} ({names})")
    return ", ".join(parts)


def _short(digest: str | None) -> str:
    return "missing" if digest is None else digest[:8]


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else render(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        import shlex

        text = shlex.join(value)
    return repr(text) if isinstance(value, str | list) else text
