"""Environments built from the lock: one virtualenv per lock, in the cache directory.

``CACHE/envs/<lock digest>-py<X.Y>/`` is keyed by the BLAKE3 hash of the lock file's bytes (the
hash every fingerprint already holds) and the Python version, so clones sharing a cache
(``MLBUILD_CACHE_DIR``) share environments, and an unchanged lock is one hash and one stat away
from reuse. Packages are installed with ``pip --require-hashes --no-deps``: every file is checked
against the lock's hashes, and a dependency the lock forgot fails ``pip check`` instead of being
fetched unpinned.

A build happens under a lock file (``CACHE/envs/<key>.lock``) in place — a virtualenv cannot be
moved — and the marker ``mlbuild-env.json`` is written last: a folder without it is what a
killed build left, and is removed before the next build.

An *isolated* step runs with the environment's ``bin`` first on ``PATH``, ``VIRTUAL_ENV`` set,
user site-packages off and ``PYTHONPATH`` holding only mlbuild itself (a step may ``import
mlbuild`` for its params): what else happens to be installed cannot reach it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mlbuild import atomic
from mlbuild.cache import hash_bytes
from mlbuild.package.env_marker import ENV_MARKER
from mlbuild.package.errors import EnvError, LockError
from mlbuild.package.locks import Lock, read_lock

MARKER = ENV_MARKER
_PIP_TIMEOUT = 1800.0


@dataclass(frozen=True)
class BuiltEnv:
    path: Path
    python: Path
    reused: bool
    packages: int
    seconds: float

    def step_environment(self, mlbuild_path: Path) -> dict[str, str]:
        """The variables an isolated step runs with (on top of the caller's environment)."""
        return {
            "PATH": f"{self.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.path),
            "PYTHONNOUSERSITE": "1",
            "PYTHONPATH": str(mlbuild_path),
        }


def env_key(lock_digest: str, python_version: str) -> str:
    return f"{lock_digest[:24]}-py{python_version}"


def build_env(
    cache_root: Path,
    lock_path: Path,
    shown: str,
    *,
    python: str | None,
    progress: Callable[[str], None] = lambda text: None,
) -> BuiltEnv:
    """The environment of the lock at ``lock_path``, built if it is not in the cache yet.

    ``python`` is ``environment.python`` (``3.11``); the interpreter is this one when its version
    matches, else ``pythonX.Y`` on PATH.
    """
    started = time.monotonic()
    try:
        data = lock_path.read_bytes()
    except FileNotFoundError:
        raise LockError(f"{shown} does not exist; create it with `mlbuild env lock`") from None
    interpreter, version = _interpreter(python)
    folder = cache_root / "envs" / env_key(hash_bytes(data), version)
    found = _reusable(folder)
    if found is not None:
        return BuiltEnv(folder, folder / "bin" / "python", True, found, time.monotonic() - started)
    lock = read_lock(lock_path, shown)
    unhashed = lock.unhashed()
    if unhashed:
        listed = ", ".join(sorted(unhashed)[:5]) + (" …" if len(unhashed) > 5 else "")
        raise LockError(
            f"{shown} pins {listed} without hashes; mlbuild installs only hash-checked packages: "
            "regenerate the lock with `mlbuild env lock` (pip-compile --generate-hashes)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _building(folder.parent / f"{folder.name}.lock"):
        found = _reusable(folder)  # another process built it while we waited
        if found is not None:
            return BuiltEnv(
                folder, folder / "bin" / "python", True, found, time.monotonic() - started
            )
        if folder.exists():
            progress(f"removing the unfinished environment {folder}")
            shutil.rmtree(folder)
        try:
            _create(folder, interpreter, lock, lock_path, progress)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return BuiltEnv(
        folder, folder / "bin" / "python", False, len(lock.pins), time.monotonic() - started
    )


def _reusable(folder: Path) -> int | None:
    """The package count of a complete environment in ``folder``, None if there is none."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (folder / "bin" / "python").exists() or not isinstance(marker, dict):
        return None
    count = marker.get("packages")
    return count if isinstance(count, int) else None


def _create(
    folder: Path, interpreter: str, lock: Lock, lock_path: Path, progress: Callable[[str], None]
) -> None:
    progress(f"creating the environment of {lock.path} ({len(lock.pins)} packages) in {folder}")
    # no pip inside: creating it takes most of a build (ensurepip), and a step that cannot
    # `pip install` cannot drift from the lock; this pip installs into it (`pip --python`)
    _run(
        [interpreter, "-m", "venv", "--without-pip", str(folder)],
        "create the virtualenv",
        timeout=300,
    )
    requirements = lock_path
    if lock.kind == "pipfile":
        requirements = folder / "mlbuild-requirements.txt"
        requirements.write_text(_pipfile_index_options(lock_path) + lock.requirements())
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(folder / "bin" / "python"),
        "--disable-pip-version-check",
    ]
    _run(
        [*pip, "install", "--require-hashes", "--no-deps", "-r", str(requirements)],
        f"install the packages of {lock.path}",
        timeout=_PIP_TIMEOUT,
    )
    _run([*pip, "check"], f"check that {lock.path} pins every dependency", timeout=300)
    atomic.write_json(
        folder / MARKER,
        {
            "lock": lock.path,
            "digest": lock.digest,
            "packages": len(lock.pins),
            "built": time.time(),
        },
    )


def _pipfile_index_options(lock_path: Path) -> str:
    """Pipfile.lock's sources as pip options; ``${VAR}`` in a URL is left for pip to expand, so
    a credential never passes through mlbuild."""
    try:
        sources = json.loads(lock_path.read_text(encoding="utf-8"))["_meta"]["sources"]
    except (KeyError, TypeError, ValueError, OSError):
        return ""
    urls = [s["url"] for s in sources if isinstance(s, dict) and isinstance(s.get("url"), str)]
    if not urls:
        return ""
    lines = [f"--index-url {urls[0]}", *(f"--extra-index-url {u}" for u in urls[1:])]
    return "\n".join(lines) + "\n"


def _interpreter(python: str | None) -> tuple[str, str]:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python is None or python == here or python.startswith(here + "."):
        return sys.executable, here
    wanted = ".".join(python.split(".")[:2])
    found = shutil.which(f"python{wanted}")
    if found is None:
        raise EnvError(
            f"environment.python is {python}, but mlbuild runs on Python {here} and no "
            f"python{wanted} is on PATH; install Python {wanted} or change environment.python"
        )
    return found, wanted


def _run(argv: list[str], what: str, *, timeout: float) -> None:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env=_without_host_paths(),
        )
    except subprocess.TimeoutExpired:
        raise EnvError(f"could not {what}: it took over {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise EnvError(f"could not {what} (exit {done.returncode}):\n{tail}")


# variables through which the caller's Python would leak into the environment being built: with
# PYTHONPATH naming a source checkout, `pip check` saw its egg-info as an installed package
_HOST_PATHS = ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP")


def _without_host_paths() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _HOST_PATHS}


@contextlib.contextmanager
def _building(lock_file: Path) -> Iterator[None]:
    """One builder per environment at a time; the kernel releases the lock if it dies."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mlbuild_path(meta: Path) -> Path:
    """A folder holding only ``mlbuild`` (a link to this installation), for isolated steps'
    ``PYTHONPATH``: mlbuild's own modules reach the step, nothing else installed beside it."""
    import mlbuild

    package = Path(mlbuild.__file__).resolve().parent
    folder = meta / "isolated"
    link = folder / "mlbuild"
    with contextlib.suppress(OSError):
        if link.is_symlink() and Path(os.readlink(link)) == package:
            return folder
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".mlbuild.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(package, target_is_directory=True)
    os.replace(tmp, link)
    return folder
