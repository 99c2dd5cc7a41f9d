"""The packages an environment lock pins: a pip requirements lock or a ``Pipfile.lock``.

Only what a reviewer needs: package name (normalised as PEP 503 does) → pinned version, and how
two pins compare. A line that pins nothing readable is kept with its text as the "version", so a
change to it still shows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# one comparison of pins for the diff and `mlbuild env lock`
from mlbuild.package.locks import PackageChange, compare_pins

__all__ = ["LockReadError", "PackageChange", "compare_pins", "read_lock"]
_MAX_BYTES = 16 * 1024 * 1024  # a lock file's size; larger is refused, not read
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")
_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")


class LockReadError(ValueError):
    """The lock file cannot be read as one; the message says why."""


def normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """The pins of the lock file at ``path``; :class:`LockReadError` when it is not one."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise LockReadError(exc.strerror or str(exc)) from None
    if len(data) > _MAX_BYTES:
        raise LockReadError(f"over {_MAX_BYTES // 2**20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockReadError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if path.name.endswith(".lock") and text.lstrip().startswith("{"):
        return parse_pipfile_lock(text)
    return parse_requirements(text)


def parse_requirements(text: str) -> dict[str, str]:
    """``name==1.2`` lines (pip freeze, pip-compile with hashes, ``-e …#egg=name``, ``name @
    URL``) → ``{name: "1.2"}``; options and comments are skipped."""
    pins: dict[str, str] = {}
    for line in _logical_lines(text):
        if line.startswith(("-e ", "--editable ", "--editable=")):
            egg = _EGG.search(line)
            if egg:
                pins[normalise_name(egg.group(1))] = "editable " + line.split(maxsplit=1)[-1]
            continue
        if line.startswith("-"):
            continue  # --index-url, -r other.txt, --hash on its own: not a pin
        match = _NAME.match(line.split(";")[0])
        if match is None:
            continue
        name, rest = normalise_name(match.group(1)), match.group(3).strip()
        rest = re.split(r"\s--hash", rest)[0].strip()
        if rest.startswith("==="):
            pins[name] = rest[3:].strip()
        elif rest.startswith("=="):
            pins[name] = rest[2:].strip()
        else:
            pins[name] = rest or "(unpinned)"
    return pins


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\r?\n", " ", text)
    lines = []
    for raw in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def parse_pipfile_lock(text: str) -> dict[str, str]:
    """``Pipfile.lock``'s ``default`` and ``develop`` pins; develop ones as ``name (dev)``."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise LockReadError(f"not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise LockReadError("expected a JSON object with 'default' and 'develop'")
    pins: dict[str, str] = {}
    for section, suffix in (("default", ""), ("develop", " (dev)")):
        packages = raw.get(section)
        if packages is None:
            continue
        if not isinstance(packages, dict):
            raise LockReadError(f"'{section}' is not a mapping of packages")
        for name, spec in packages.items():
            pins[normalise_name(str(name)) + suffix] = _pipfile_version(spec)
    return pins


def _pipfile_version(spec: Any) -> str:
    if not isinstance(spec, dict):
        return str(spec)
    version = spec.get("version")
    if isinstance(version, str):
        return version.removeprefix("===").removeprefix("==")
    for key in ("git", "path", "file"):
        if key in spec:
            ref = spec.get("ref")
            return f"{key} {spec[key]}" + (f"@{ref}" if ref else "")
    return json.dumps(spec, sort_keys=True)
