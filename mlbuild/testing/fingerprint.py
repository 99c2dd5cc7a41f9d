"""A test's fingerprint: everything its verdict depends on, hashed.

::

    kind + settings ─┐
    the model ───────┤  (its artifacts' digests and signature: the version `serve` reports)
    servable code ───┤  (the .py files beside model.class, which the model imports)
    files it reads ──┼─▶ BLAKE3 ─▶ fingerprint ─▶ verdict in the action cache?
    metric value ────┤  (metric tests: the value the step recorded)
    baseline ────────┤  (the version under the alias, and its value)
    Python + lock ───┘

A test runs again only when one of these changed, and ``mlbuild test`` says which, from what to
what, as ``plan`` does for steps. The release gate recomputes the same fingerprints for the model
it is about to package, so a verdict counts only for the exact model it was reached on.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.cache import Hasher, hash_bytes
from mlbuild.serve.resolve import ModelSource

TEST_FORMAT = 1  # bumped when what a verdict means changes, so no older verdict is trusted
_SKIP = {"__pycache__", ".git", ".mlbuild"}


def model_digest(source: ModelSource) -> str:
    """The model's identity in full: its artifacts' content digests and its signature (the
    server's 12-digit version is a prefix of the same hash)."""
    return hash_bytes(
        json.dumps([sorted(source.digests.items()), source.signature], sort_keys=True).encode()
    )


def code_files(root: Path, class_ref: str | None) -> list[str]:
    """The servable's code: every ``.py`` file in the folder of ``model.class`` and below
    (``src/`` for ``src/serve.py:Model``), which is where the code it imports lives."""
    if class_ref is None:
        return []
    folder = PurePosixPath(class_ref.rpartition(":")[0]).parent
    top = root / folder
    found = []
    for current, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP)
        for name in sorted(files):
            if name.endswith(".py"):
                found.append(
                    os.path.relpath(os.path.join(current, name), root).replace(os.sep, "/")
                )
    return sorted(found)


def digests(hasher: Hasher, paths: list[str]) -> dict[str, str | None]:
    """Each path's content digest (a folder's manifest digest); None for one that is gone."""
    found: dict[str, str | None] = {}
    for path in paths:
        digest = hasher.digest(path)
        found[path] = digest.value if digest is not None else None
    return found


def components(
    *,
    kind: str,
    config: dict[str, Any],
    model: str | None,
    code: dict[str, str | None],
    files: dict[str, str | None],
    metric: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    lock: str | None,
) -> dict[str, Any]:
    """What a test's verdict depends on (see the module docstring), as plain JSON."""
    settings = {k: v for k, v in config.items() if k != "description"}  # words, not behaviour
    return {
        "format": TEST_FORMAT,
        "kind": kind,
        "config": settings,
        "model": model,
        "code": code,
        "files": files,
        "metric": metric,
        "baseline": baseline,
        "python": platform.python_version(),
        "lock": lock,
    }


def fingerprint(parts: dict[str, Any]) -> str:
    return hash_bytes(json.dumps(parts, sort_keys=True, default=str).encode())


def explain(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Why a test with components ``new`` runs, compared with its last run's ``old``."""
    if old is None:
        return ["not run yet"]
    reasons: list[str] = []
    if old.get("format") != new["format"]:
        return ["mlbuild's test format changed"]
    if old.get("kind") != new["kind"]:
        reasons.append(f"kind changed: {old.get('kind')} → {new['kind']}")
    reasons += _changed_keys("setting", old.get("config") or {}, new["config"])
    if old.get("model") != new["model"]:
        reasons.append(f"model changed ({_short(old.get('model'))} → {_short(new['model'])})")
    reasons += _changed_files("servable code", old.get("code") or {}, new["code"])
    reasons += _changed_files("file", old.get("files") or {}, new["files"])
    if old.get("metric") != new["metric"] and new["metric"] is not None:
        before = (old.get("metric") or {}).get("value")
        reasons.append(
            f"metric {new['metric']['key']} changed: {before} → {new['metric']['value']}"
        )
    if old.get("baseline") != new["baseline"]:
        reasons.append(
            f"baseline changed: {_baseline(old.get('baseline'))} → {_baseline(new['baseline'])}"
        )
    if old.get("python") != new["python"]:
        reasons.append(f"Python changed: {old.get('python')} → {new['python']}")
    if old.get("lock") != new["lock"]:
        reasons.append("environment lock file changed")
    return reasons or ["its verdict is not in the cache (removed by gc, or never stored)"]


def _changed_keys(what: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [
        f"{what} {key} changed: {_value(old.get(key))} → {_value(new.get(key))}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _changed_files(what: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    reasons = []
    for path in sorted(set(old) | set(new)):
        if path not in old:
            reasons.append(f"{what} {path} added")
        elif path not in new:
            reasons.append(f"{what} {path} removed")
        elif old[path] != new[path]:
            reasons.append(f"{what} {path} changed ({_short(old[path])} → {_short(new[path])})")
    return reasons


def _baseline(info: dict[str, Any] | None) -> str:
    if not info or info.get("version") is None:
        return "none"
    return f"version {info['version']} ({info.get('value')})"


def _short(digest: Any) -> str:
    return str(digest)[:8] if digest else "none"


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else "unset"
    return text if len(text) <= 60 else text[:57] + "..."
