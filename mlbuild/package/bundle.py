"""Bundles: the model as one directory or ``.tar.gz`` that ``mlbuild serve BUNDLE`` serves with
no repository, cache or recipe.

::

    manifest.json           format, model (name, loader, version), every file with its digest,
                            the lock and the provenance (commit, run, data versions, …)
    artifacts/NAME/FILE     the model's artifacts, copied from the verified cache
    code/…                  the servable code, at its paths in the repository
    signature.json          the inputs and outputs
    requirements.lock       the lock's pins and hashes (no index options: they may hold tokens)

The artifacts are the bytes the steps produced for the current recipe and params, taken from the
content-addressed cache and verified as they are copied (the same path ``mlbuild serve`` takes),
never the workspace copies. A bundle is written beside its target and swapped in once complete;
an existing target is replaced only if it is a bundle mlbuild wrote.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild import atomic
from mlbuild.cache import hash_regular_file
from mlbuild.package.errors import BundleError
from mlbuild.package.locks import Lock
from mlbuild.package.provenance import Provenance

MANIFEST = "manifest.json"
FORMAT = 1
KIND = "mlbuild-bundle"
LOCK_NAME = "requirements.lock"


@dataclass(frozen=True)
class Bundle:
    """A bundle's files, ready to write: bundle path → source file or bytes."""

    files: dict[str, Path | bytes]
    manifest: dict[str, Any]

    @property
    def code_files(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith("code/"))

    @property
    def content_digest(self) -> str:
        """What the bundle serves, independent of when and where it was made."""
        from mlbuild.cache import hash_bytes

        files = self.manifest["files"]
        return hash_bytes(json.dumps([self.manifest["model"], files], sort_keys=True).encode())


def make_bundle(
    *,
    name: str,
    version: str,
    flavor: str | None,
    class_ref: str | None,
    artifacts: dict[str, Path],
    digests: dict[str, str],
    signature: dict[str, Any],
    code: dict[str, Path],
    lock: Lock | None,
    provenance: Provenance,
) -> Bundle:
    """The bundle of a model: ``artifacts`` (name → a verified file with its digest in
    ``digests``), ``code`` (repository path → file) and the lock's pins."""
    files: dict[str, Path | bytes] = {}
    for artifact, path in sorted(artifacts.items()):
        files[f"artifacts/{artifact}/{path.name}"] = path
    for rel, path in sorted(code.items()):
        files[f"code/{rel}"] = path
    files["signature.json"] = json.dumps(signature, indent=2, sort_keys=True).encode() + b"\n"
    if lock is not None:
        files[LOCK_NAME] = lock.requirements().encode()
    entries: dict[str, dict[str, Any]] = {}
    for rel, content in sorted(files.items()):
        if isinstance(content, bytes):
            from mlbuild.cache import hash_bytes

            entries[rel] = {"digest": hash_bytes(content), "size": len(content)}
        else:
            entries[rel] = {"digest": hash_regular_file(content), "size": content.stat().st_size}
    for artifact, path in artifacts.items():
        rel = f"artifacts/{artifact}/{path.name}"
        if entries[rel]["digest"] != digests[artifact]:
            raise BundleError(
                f"model artifact '{artifact}' changed while it was being packaged ({path}); "
                "run `mlbuild package` again"
            )
    manifest = {
        "kind": KIND,
        "format": FORMAT,
        "model": {
            "name": name,
            "version": version,
            "flavor": flavor,
            "class": f"code/{class_ref}" if class_ref else None,
            "artifacts": {
                artifact: f"artifacts/{artifact}/{path.name}"
                for artifact, path in sorted(artifacts.items())
            },
            "signature": "signature.json",
        },
        "files": entries,
        "lock": (
            None
            if lock is None
            else {"file": LOCK_NAME, "source": lock.path, "kind": lock.kind, "digest": lock.digest}
        ),
        "provenance": provenance.to_json(),
    }
    return Bundle(files, manifest)


def write_directory(bundle: Bundle, target: Path) -> None:
    """Write ``bundle`` as the directory ``target``, swapped in once complete."""
    _refuse_foreign(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old: Path | None = None
    try:
        for rel, content in bundle.files.items():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                dest.write_bytes(content)
            else:
                shutil.copyfile(content, dest)
            os.chmod(dest, 0o444)
        (staging / MANIFEST).write_text(_manifest_text(bundle), encoding="utf-8")
        os.chmod(staging, 0o755)  # noqa: S103 - a bundle is read by whoever serves it
        if os.path.lexists(target):
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not os.path.lexists(target):
            os.replace(old, target)
            old = None
        raise
    finally:
        if old is not None:
            _remove_tree(old)


def write_archive(bundle: Bundle, target: Path) -> None:
    """Write ``bundle`` as the gzip'd tar ``target`` (byte for byte the same for the same
    bundle: sorted members, no times or owners), replaced atomically."""
    _refuse_foreign(target)
    with (
        atomic.replacing(target) as tmp,
        tmp.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add(tar, MANIFEST, _manifest_text(bundle).encode())
        for rel in sorted(bundle.files):
            content = bundle.files[rel]
            _add(tar, rel, content if isinstance(content, bytes) else content.read_bytes())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def _manifest_text(bundle: Bundle) -> str:
    return json.dumps(bundle.manifest, indent=2, sort_keys=True) + "\n"


def _refuse_foreign(target: Path) -> None:
    """An existing ``target`` is replaced only if it is a bundle mlbuild wrote."""
    if not os.path.lexists(target):
        return
    if target.is_symlink():
        raise BundleError(f"'{target}' is a symlink; mlbuild writes a bundle only in its place")
    if target.is_dir():
        if _is_bundle_manifest(target / MANIFEST):
            return
    elif target.is_file() and _archive_is_bundle(target):
        return
    raise BundleError(
        f"'{target}' exists and is not a bundle mlbuild wrote; move it away or delete it, then "
        "run `mlbuild package` again"
    )


def _is_bundle_manifest(path: Path) -> bool:
    try:
        raw = json.loads(path.read_bytes()[: 16 * 1024 * 1024])
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and raw.get("kind") == KIND


def _archive_is_bundle(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                return False
            handle = tar.extractfile(first)
            raw = json.loads(handle.read(16 * 1024 * 1024)) if handle else None
    except (OSError, tarfile.TarError, ValueError, EOFError):
        return False
    return isinstance(raw, dict) and raw.get("kind") == KIND


def _remove_tree(path: Path) -> None:
    for folder, _, names in os.walk(path):
        os.chmod(folder, 0o755)  # noqa: S103 - only to delete what we wrote read-only
        for name in names:
            os.chmod(os.path.join(folder, name), 0o644)
    shutil.rmtree(path, ignore_errors=True)


def code_files(root: Path, paths: list[str], py_only: bool) -> dict[str, Path]:
    """Repository path → file for the servable code: files as named, folders walked (only their
    ``.py`` files when ``py_only``; never ``__pycache__``, hidden names or symlinks)."""
    found: dict[str, Path] = {}
    for rel in paths:
        path = root / rel
        if path.is_symlink():
            raise BundleError(f"package.code: '{rel}' is a symlink; name the file it points to")
        if path.is_file():
            found[rel] = path
            continue
        if not path.is_dir():
            raise BundleError(f"package.code: '{rel}' does not exist")
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for name in sorted(names):
                file = Path(folder) / name
                if name.startswith(".") or (py_only and not name.endswith(".py")):
                    continue
                inner = str(PurePosixPath(rel) / file.relative_to(path).as_posix())
                if file.is_symlink():
                    raise BundleError(
                        f"package.code: '{inner}' is a symlink; mlbuild packages only regular "
                        "files (replace it with the file)"
                    )
                if file.is_file():
                    found[inner] = file
    return found


def created_now() -> float:
    return time.time()
