"""``mlbuild env lock`` and ``mlbuild env check``: the lock written by the matching locker, and
whether it still matches its input and the interpreter the steps run with.

Lockers: pipenv for a Pipfile (``pipenv lock``; ``pipenv verify`` says whether Pipfile.lock is
current), pip-tools (``pip-compile --generate-hashes``) or uv (``uv pip compile
--generate-hashes``) for a requirements lock, from ``requirements.in`` beside it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbuild.package.errors import EnvError, LockError
from mlbuild.package.locks import Lock, PackageChange, canonical, compare_pins, read_lock

# installed with every interpreter or by mlbuild itself: never "extra"
_TOOLING = {"pip", "setuptools", "wheel", "mlbuild-engine", "pipenv", "pip-tools", "uv"}


@dataclass(frozen=True)
class EnvFiles:
    """The environment's files: the lock, and what it is made from (Pipfile, requirements.in)."""

    root: Path
    lock: str  # relative to root
    source: str | None  # the Pipfile, or requirements.in when it exists
    kind: str  # "pipfile" or "requirements"

    @classmethod
    def of(cls, root: Path, lock_file: str | None, pipfile: str | None) -> EnvFiles:
        if lock_file is None:
            raise EnvError(
                "the recipe declares no environment lock; add `environment: {pipfile: Pipfile}` "
                "or `environment: {requirements: requirements.lock}` to ml.yaml"
            )
        if pipfile is not None:
            return cls(root, lock_file, pipfile, "pipfile")
        source = str(Path(lock_file).with_suffix(".in"))
        return cls(root, lock_file, source if (root / source).is_file() else None, "requirements")

    def read(self) -> Lock:
        return read_lock(self.root / self.lock, self.lock)


@dataclass(frozen=True)
class LockResult:
    lock: str
    command: list[str]
    changes: list[PackageChange]
    created: bool


def lock_env(files: EnvFiles) -> LockResult:
    """Run the locker; report what changed in the lock's pins."""
    before = _pins_or_none(files)
    if files.kind == "pipfile":
        assert files.source is not None
        command = [*_pipenv(), "lock"]
        _locker(command, files.root / Path(files.source).parent, files, "pipenv lock")
    else:
        if files.source is None:
            raise EnvError(
                f"{files.lock} is written from {Path(files.lock).with_suffix('.in')}, which does "
                "not exist; list your direct dependencies there (one per line) and run "
                "`mlbuild env lock` again"
            )
        command = [
            *_compiler(),
            "--generate-hashes",
            # the index comes from pip's own configuration; a URL in the lock may hold a token
            "--no-emit-index-url",
            "--no-emit-find-links",
            "--quiet",
            "--output-file",
            Path(files.lock).name,
            Path(files.source).name,
        ]
        _locker(command, files.root / Path(files.lock).parent, files, command[0])
    after = files.read().versions()
    return LockResult(files.lock, command, compare_pins(before or {}, after), before is None)


def _pins_or_none(files: EnvFiles) -> dict[str, str] | None:
    try:
        return files.read().versions()
    except LockError:
        return None


def _pipenv() -> list[str]:
    if importlib.util.find_spec("pipenv") is not None:
        return [sys.executable, "-m", "pipenv"]
    found = shutil.which("pipenv")
    if found is None:
        raise EnvError("pipenv is not installed; install it with `pip install pipenv`")
    return [found]


def _compiler() -> list[str]:
    if importlib.util.find_spec("piptools") is not None:
        return [sys.executable, "-m", "piptools", "compile"]
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "compile"]
    raise EnvError(
        "no locker for a requirements lock is installed; install pip-tools (`pip install "
        "pip-tools`) or uv"
    )


def _locker(command: list[str], cwd: Path, files: EnvFiles, name: str) -> None:
    env = {
        "PIPENV_YES": "1",
        "PIPENV_NOSPIN": "1",
        "PIPENV_PIPFILE": str(files.root / (files.source or "")),
    }
    import os

    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env if files.kind == "pipfile" else {})},
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=1800,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise EnvError(f"`{name}` failed (exit {done.returncode}) for {files.source}:\n{tail}")


@dataclass
class CheckReport:
    lock: str
    source: str | None
    lock_current: bool | None  # None: nothing to compare it with
    lock_problems: list[str] = field(default_factory=list)
    interpreter: str = ""
    python_version: str = ""
    missing: list[str] = field(default_factory=list)  # "name==version"
    wrong: list[tuple[str, str, str]] = field(default_factory=list)  # name, installed, pinned
    extra: list[str] = field(default_factory=list)
    fix: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.lock_current is not False and not self.missing and not self.wrong

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "lock": self.lock,
            "source": self.source,
            "lock_current": self.lock_current,
            "lock_problems": self.lock_problems,
            "interpreter": self.interpreter,
            "python_version": self.python_version,
            "missing": self.missing,
            "wrong": [{"name": n, "installed": i, "pinned": p} for n, i, p in self.wrong],
            "extra": self.extra,
            "fix": self.fix,
        }


def check_env(files: EnvFiles, interpreter: str) -> CheckReport:
    """Whether the lock matches its source, and whether ``interpreter`` has what it pins."""
    lock = files.read()
    report = CheckReport(files.lock, files.source, None)
    if files.kind == "pipfile":
        report.lock_current = _pipfile_current(files)
        if not report.lock_current:
            report.lock_problems.append(f"{files.lock} is out of date with {files.source}")
    elif files.source is not None:
        report.lock_problems = _unsatisfied(files.root / files.source, files.source, lock)
        report.lock_current = not report.lock_problems
    installed, version = _installed(interpreter)
    report.interpreter, report.python_version = interpreter, version
    for name, pin in sorted(lock.pins.items()):
        if not _applies(pin.marker, installed_python=version):
            continue
        have = installed.get(name)
        if have is None:
            report.missing.append(f"{pin.name}=={pin.version}")
        elif have != pin.version:
            report.wrong.append((pin.name, have, pin.version))
    report.extra = sorted(n for n in installed if n not in lock.pins and n not in _TOOLING)
    if report.lock_current is False:
        report.fix.append("mlbuild env lock")
    if report.missing or report.wrong:
        if files.kind == "pipfile":
            report.fix.append("pipenv sync")
        else:
            report.fix.append(f"pip install --require-hashes --no-deps -r {files.lock}")
        report.fix.append("mlbuild env build (and `mlbuild run --isolated`)")
    return report


def _pipfile_current(files: EnvFiles) -> bool:
    done = subprocess.run(
        [*_pipenv(), "verify"],
        cwd=files.root / Path(files.source or "").parent,
        env={**os.environ, "PIPENV_PIPFILE": str(files.root / (files.source or ""))},
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return done.returncode == 0


def _unsatisfied(path: Path, shown: str, lock: Lock) -> list[str]:
    """Each requirement of ``requirements.in`` the lock's pins do not satisfy."""
    from packaging.requirements import InvalidRequirement, Requirement

    from mlbuild.package.locks import _logical_lines

    problems = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{shown}: cannot read it ({exc})"]
    for number, line in _logical_lines(text):
        if line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"{shown}:{number}: not a requirement ({exc})")
            continue
        pin = lock.pins.get(canonical(req.name))
        if pin is None:
            problems.append(f"{req.name} ({shown}:{number}) is not pinned in {lock.path}")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(
                f"{req} ({shown}:{number}) is not satisfied by {pin.name}=={pin.version} in "
                f"{lock.path}"
            )
    return problems


_LIST = (
    "import importlib.metadata as m, json, platform; "
    "print(json.dumps([platform.python_version(), "
    "{d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}]))"
)


def _installed(interpreter: str) -> tuple[dict[str, str], str]:
    try:
        done = subprocess.run(
            [interpreter, "-I", "-c", _LIST],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise EnvError(f"cannot run the interpreter {interpreter}: {exc.strerror}") from None
    if done.returncode != 0:
        raise EnvError(f"cannot list the packages of {interpreter}: {done.stderr.strip()}")
    version, packages = json.loads(done.stdout)
    return {canonical(name): v for name, v in packages.items()}, version


def _applies(marker: str | None, *, installed_python: str) -> bool:
    if not marker:
        return True
    from packaging.markers import InvalidMarker, Marker

    try:
        major_minor = ".".join(installed_python.split(".")[:2])
        return Marker(marker).evaluate(
            {"python_version": major_minor, "python_full_version": installed_python}
        )
    except InvalidMarker:
        return True
