"""Lock files as installs read them: every package pinned to one version, with its hashes.

Two formats: a pip requirements lock (``pip-compile --generate-hashes``, ``uv pip compile
--generate-hashes``) and pipenv's ``Pipfile.lock`` (its ``default`` packages). Both become one
:class:`Lock`, from which :meth:`Lock.requirements` writes the hash-checking requirements file
that pip installs from (``--require-hashes``: a wheel whose hash is not in the lock is refused).

What is copied into a bundle or an image is :meth:`Lock.requirements` too: the pins and hashes
only, never the lock's index options, which may carry credentials (``--index-url
https://user:token@…``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.cache import hash_bytes
from mlbuild.package.errors import LockError

_MAX_BYTES = 16 * 1024 * 1024
_HASH = re.compile(r"--hash[=\s]+(sha256|sha384|sha512):([0-9a-fA-F]+)")
_UNSUPPORTED = ("-e", "--editable", "-r", "--requirement", "-c", "--constraint")


@dataclass(frozen=True)
class Pin:
    name: str  # as written
    version: str
    hashes: list[str] = field(default_factory=list)  # "sha256:…"
    marker: str | None = None

    def line(self) -> str:
        marker = f" ; {self.marker}" if self.marker else ""
        hashes = "".join(f" \\\n    --hash={h}" for h in self.hashes)
        return f"{self.name}=={self.version}{marker}{hashes}"


@dataclass(frozen=True)
class Lock:
    kind: str  # "requirements" or "pipfile"
    path: str  # relative to the workspace, for messages
    pins: dict[str, Pin]  # canonical name → pin
    digest: str  # BLAKE3 of the lock file's bytes: the environment's key

    def requirements(self) -> str:
        """The pins as a hash-checking requirements file (sorted; no index options)."""
        head = f"# the pins of {self.path} (written by mlbuild; installed with --require-hashes)\n"
        return head + "".join(self.pins[n].line() + "\n" for n in sorted(self.pins))

    def versions(self) -> dict[str, str]:
        return {name: pin.version for name, pin in self.pins.items()}

    def unhashed(self) -> list[str]:
        return [pin.name for pin in self.pins.values() if not pin.hashes]


def canonical(name: str) -> str:
    """PEP 503's normal form: ``Scikit_Learn`` → ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path, shown: str) -> Lock:
    """The lock at ``path`` (``shown`` in messages); :class:`LockError` naming the line when a
    package is not pinned to one version or cannot be installed from an index."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except FileNotFoundError:
        raise LockError(f"{shown} does not exist; create it with `mlbuild env lock`") from None
    except OSError as exc:
        raise LockError(f"{shown}: cannot read it ({exc.strerror})") from None
    if len(data) > _MAX_BYTES:
        raise LockError(f"{shown} is over {_MAX_BYTES // 2**20} MiB; it is not a lock file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockError(f"{shown} is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    digest = hash_bytes(data)
    if path.name.endswith(".lock") and text.lstrip().startswith("{"):
        return Lock("pipfile", shown, _pipfile_pins(text, shown), digest)
    return Lock("requirements", shown, _requirement_pins(text, shown), digest)


def _requirement_pins(text: str, shown: str) -> dict[str, Pin]:
    from packaging.requirements import InvalidRequirement, Requirement

    pins: dict[str, Pin] = {}
    for number, line in _logical_lines(text):
        where = f"{shown}:{number}"
        if line.startswith("-"):
            option = re.split(r"[\s=]", line, maxsplit=1)[0]
            if option in _UNSUPPORTED:
                raise LockError(
                    f"{where}: '{option}' is not supported in a lock; pin every package to a "
                    "version (`mlbuild env lock` writes such a file)"
                )
            continue  # index options: pip reads them from the original file, we never copy them
        hashes = [f"{algo.lower()}:{hexa.lower()}" for algo, hexa in _HASH.findall(line)]
        spec = _HASH.sub("", line).strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise LockError(f"{where}: not a requirement ({exc})") from None
        if req.url:
            raise LockError(
                f"{where}: '{req.name} @ {req.url}' installs from a URL; pin a version from an "
                "index instead"
            )
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or "*" in specs[0].version:
            raise LockError(
                f"{where}: '{spec}' does not pin one version; a lock pins every package as "
                "name==version (`mlbuild env lock` writes such a file)"
            )
        name = canonical(req.name)
        if name in pins:
            raise LockError(f"{where}: {req.name} is pinned twice")
        marker = str(req.marker) if req.marker else None
        pins[name] = Pin(req.name, specs[0].version, hashes, marker)
    return pins


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each requirement, continuations joined, comments dropped."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending.append(line.rstrip()[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined:
            found.append((start, joined))
    if pending and " ".join(pending).strip():
        found.append((start, " ".join(p.strip() for p in pending).strip()))
    return found


def _pipfile_pins(text: str, shown: str) -> dict[str, Pin]:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{shown} is not JSON ({exc}); run `mlbuild env lock`") from None
    packages = raw.get("default") if isinstance(raw, dict) else None
    if not isinstance(packages, dict):
        raise LockError(f"{shown} has no 'default' packages; run `mlbuild env lock`")
    pins: dict[str, Pin] = {}
    for name, spec in packages.items():
        pins[canonical(str(name))] = _pipfile_pin(str(name), spec, shown)
    return pins


def _pipfile_pin(name: str, spec: Any, shown: str) -> Pin:
    where = f"{shown}: default.{name}"
    if not isinstance(spec, dict):
        raise LockError(f"{where}: expected a mapping with 'version' and 'hashes'")
    for key in ("git", "path", "file", "editable"):
        if key in spec:
            raise LockError(
                f"{where}: installs from '{key}'; only packages pinned to a version from an index "
                "can be installed with verified hashes"
            )
    version = spec.get("version")
    if not isinstance(version, str) or not version.startswith("=="):
        raise LockError(f"{where}: no pinned version ('version': '==X'); run `mlbuild env lock`")
    hashes = spec.get("hashes", [])
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise LockError(f"{where}: 'hashes' is not a list of strings")
    markers = spec.get("markers")
    return Pin(
        name,
        version.removeprefix("===").removeprefix("=="),
        [h.lower() for h in hashes],
        markers if isinstance(markers, str) and markers else None,
    )


@dataclass(frozen=True)
class PackageChange:
    name: str
    old: str | None
    new: str | None
    change: str  # added, removed, upgraded, downgraded, changed

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new, "change": self.change}

    def describe(self) -> str:
        if self.old is None:
            return f"+ {self.name} {self.new}"
        if self.new is None:
            return f"- {self.name} {self.old}"
        return f"~ {self.name} {self.old} → {self.new} ({self.change})"


def compare_pins(old: dict[str, str], new: dict[str, str]) -> list[PackageChange]:
    """Packages added, removed, upgraded, downgraded or otherwise changed, by name."""
    changes = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if before is None:
            changes.append(PackageChange(name, None, after, "added"))
        elif after is None:
            changes.append(PackageChange(name, before, None, "removed"))
        else:
            changes.append(PackageChange(name, before, after, _direction(before, after)))
    return changes


def _direction(old: str, new: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        before, after = Version(old), Version(new)
    except InvalidVersion:
        return "changed"
    if after == before:
        return "changed"  # 1.0 and 1.0.0: the same version, written differently
    return "upgraded" if after > before else "downgraded"
