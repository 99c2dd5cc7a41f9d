"""Wheelhouses: the wheels an image installs, fetched on the host for the image's platform, so the
image build itself needs no network (it installs with ``pip --no-index``).

``CACHE/wheelhouses/<key>/`` holds the wheels of one lock (or of the serving runtime's pins) for
one platform; the key is the lock's digest (or the pins) and the platform, and a wheelhouse is
reused once its marker is written. The lock's wheels are fetched with ``--require-hashes``: a
wheel whose hash the lock does not list is refused here, and again by pip in the image.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlbuild import atomic
from mlbuild.cache import hash_bytes
from mlbuild.package.errors import DockerError, LockError
from mlbuild.package.locks import Lock
from mlbuild.package.runtime import Platform

MARKER = ".complete"
LOCK_FILE = "requirements.lock"
RUNTIME_FILE = "runtime.txt"
_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")


def lock_wheels(cache_root: Path, lock: Lock, lock_path: Path, platform: Platform) -> Path:
    """The wheelhouse of ``lock`` for ``platform``, with its hash-checking requirements file."""
    unhashed = lock.unhashed()
    if unhashed:
        raise LockError(
            f"{lock.path} pins {', '.join(sorted(unhashed)[:5])} without hashes; an image "
            "installs only hash-checked wheels: regenerate the lock with `mlbuild env lock`"
        )
    key = hash_bytes(json.dumps([lock.digest, platform.__dict__]).encode())[:24]
    folder = cache_root / "wheelhouses" / f"lock-{key}"
    if (folder / MARKER).is_file():
        return folder
    requirements = lock.requirements()
    # a requirements lock keeps its own index options (a private index, maybe with a token):
    # pip reads them from the file itself; they are never copied into the wheelhouse
    source = lock_path if lock.kind == "requirements" else None
    _fetch(folder, LOCK_FILE, requirements, source, ["--require-hashes"], platform, lock.path)
    return folder


def runtime_wheels(cache_root: Path, pins: dict[str, str], platform: Platform) -> Path:
    """The wheelhouse of the serving runtime's ``pins`` for ``platform``."""
    key = hash_bytes(json.dumps([pins, platform.__dict__]).encode())[:24]
    folder = cache_root / "wheelhouses" / f"runtime-{key}"
    if (folder / MARKER).is_file():
        return folder
    text = "".join(f"{name}=={version}\n" for name, version in pins.items())
    _fetch(folder, RUNTIME_FILE, text, None, [], platform, "mlbuild's serving runtime")
    return folder


def _fetch(
    folder: Path,
    filename: str,
    requirements: str,
    source: Path | None,
    extra: list[str],
    platform: Platform,
    what: str,
) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        listed = staging / filename  # what the image installs, by name and hash
        listed.write_text(requirements, encoding="utf-8")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--quiet",
                *extra,
                *platform.pip_options(),
                "--dest",
                str(staging),
                "-r",
                str(source or listed),
            ],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=3600,
        )
        if done.returncode != 0:
            raise DockerError(_failure(done.stderr or done.stdout, what, platform))
        (staging / MARKER).write_text("", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
        atomic.fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _failure(output: str, what: str, platform: Platform) -> str:
    missing = _NO_MATCH.search(output)
    if missing:
        return (
            f"no wheel of {missing.group(1)} ({what}) for the image's platform "
            f"({platform.describe()}); the image installs only wheels: pin a version that "
            "publishes one for this Python and platform, or use a base image whose Python "
            "has one"
        )
    if "DO NOT MATCH THE HASHES" in output:
        return (
            f"a downloaded file does not match the hashes in {what}; the lock or the index is "
            f"wrong — regenerate the lock with `mlbuild env lock`:\n{_tail(output)}"
        )
    return f"could not fetch the wheels of {what}:\n{_tail(output)}"


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-10:])
