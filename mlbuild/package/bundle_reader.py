"""Open a bundle to serve it: unpack an archive safely, check every file against the manifest.

A bundle's model code runs and its joblib artifacts are unpickled, so nothing is loaded until the
bundle holds exactly the files its manifest lists — no more (a stray ``numpy.py`` beside the
servable would shadow numpy), no fewer, each hashing to its digest, none a symlink. An archive is
unpacked into a fresh temporary directory, refusing links, devices, absolute names and ``..``,
and stopping past :data:`MAX_FILES` members or :data:`MAX_BYTES` bytes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mlbuild.cache import hash_regular_file
from mlbuild.package.bundle import FORMAT, KIND, MANIFEST
from mlbuild.package.errors import BundleError

MAX_FILES = 100_000
MAX_BYTES = 64 * 1024**3
_MANIFEST_BYTES = 16 * 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class OpenedBundle:
    root: Path
    manifest: dict[str, Any]
    temporary: bool  # unpacked from an archive into a folder of its own
    state_dir: Path  # the server's scratch folder (--workers' settings), removed by close()

    def close(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def model_source(self) -> Any:
        """The :class:`~mlbuild.serve.ModelSource` the server loads."""
        from mlbuild.serve.resolve import ModelSource

        model = self.manifest["model"]
        files = self.manifest["files"]
        artifacts = {name: str(self.root / rel) for name, rel in model["artifacts"].items()}
        signature = json.loads((self.root / model["signature"]).read_text(encoding="utf-8"))
        return ModelSource(
            name=model["name"],
            version=model["version"],
            root=str(self.root),
            flavor=model["flavor"],
            class_ref=model["class"],
            artifacts=artifacts,
            signature=signature,
            digests={name: files[rel]["digest"] for name, rel in model["artifacts"].items()},
        )


def is_bundle(word: str) -> bool:
    """``word`` names a bundle (an archive, or a folder with a manifest), not a Hydra override."""
    if "=" in word or word.startswith(("~", "+")):
        return False
    path = Path(word)
    return word.endswith((".tar.gz", ".tgz")) or (path / MANIFEST).is_file()


def open_bundle(path: Path) -> OpenedBundle:
    """The bundle at ``path`` (a folder or ``.tar.gz``), checked file by file."""
    if path.is_dir():
        return _checked(path, temporary=False)
    if not path.is_file():
        raise BundleError(f"{path}: no such bundle (a folder or .tar.gz `mlbuild package` wrote)")
    root = Path(tempfile.mkdtemp(prefix="mlbuild-bundle-"))
    try:
        _unpack(path, root)
        return _checked(root, temporary=True)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _unpack(archive: Path, root: Path) -> None:
    count = total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                count += 1
                total += max(member.size, 0)
                if count > MAX_FILES or total > MAX_BYTES:
                    raise BundleError(
                        f"{archive}: more than {MAX_FILES} files or {MAX_BYTES // 1024**3} GiB; "
                        "it is not a bundle mlbuild wrote"
                    )
                name = _member_name(archive, member)
                if member.isdir():
                    (root / name).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise BundleError(
                        f"{archive}: '{member.name}' is a link or special file; a bundle holds "
                        "only regular files"
                    )
                dest = root / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, dest.open("xb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError):
            raise BundleError(f"{archive}: a file appears twice in the archive") from None
        raise BundleError(f"{archive}: not a readable .tar.gz bundle ({exc})") from None


def _member_name(archive: Path, member: tarfile.TarInfo) -> str:
    name = member.name
    parts = PurePosixPath(name).parts
    if not name or name.startswith("/") or ".." in parts or "\0" in name or not parts:
        raise BundleError(f"{archive}: member '{name}' would be written outside the bundle")
    return str(PurePosixPath(*parts))


def _checked(root: Path, *, temporary: bool) -> OpenedBundle:
    manifest = _manifest(root)
    listed: dict[str, Any] = manifest["files"]
    present: set[str] = set()
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(folder) / name
            if path.is_symlink():
                raise BundleError(f"{path}: a symlink in the bundle; a bundle holds none")
        for name in names:
            rel = (Path(folder) / name).relative_to(root).as_posix()
            if rel != MANIFEST:
                present.add(rel)
    extra = sorted(present - listed.keys())
    missing = sorted(listed.keys() - present)
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"files the manifest does not list: {', '.join(extra[:5])}")
        if missing:
            parts.append(f"files missing: {', '.join(missing[:5])}")
        raise BundleError(
            f"{root} is not the bundle its manifest describes ({'; '.join(parts)}); nothing was "
            "loaded — make it again with `mlbuild package`"
        )
    for rel, entry in sorted(listed.items()):
        if hash_regular_file(root / rel) != entry["digest"]:
            raise BundleError(
                f"{root / rel} does not hash to the digest in the bundle's manifest "
                f"({entry['digest'][:12]}): the bundle was altered or damaged; nothing was "
                "loaded — make it again with `mlbuild package`"
            )
    return OpenedBundle(root, manifest, temporary, Path(tempfile.mkdtemp(prefix="mlbuild-serve-")))


def _manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        with path.open("rb") as handle:
            data = handle.read(_MANIFEST_BYTES + 1)
        raw = json.loads(data) if len(data) <= _MANIFEST_BYTES else None
    except FileNotFoundError:
        raise BundleError(f"{root} has no {MANIFEST}; it is not a bundle") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is not a bundle manifest ({exc})") from None
    problem = _shape_problem(raw)
    if problem is not None:
        raise BundleError(f"{path}: {problem}; make the bundle again with `mlbuild package`")
    assert isinstance(raw, dict)
    return raw


def _shape_problem(raw: Any) -> str | None:
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        return "not a bundle manifest"
    if raw.get("format") != FORMAT:
        return f"bundle format {raw.get('format')!r}; this mlbuild reads format {FORMAT}"
    files, model = raw.get("files"), raw.get("model")
    if not isinstance(files, dict) or not isinstance(model, dict):
        return "'files' and 'model' must be mappings"
    for rel, entry in files.items():
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or ".." in parts or rel == MANIFEST or not parts:
            return f"file '{rel}' would be outside the bundle"
        if not isinstance(entry, dict) or not _DIGEST.match(str(entry.get("digest", ""))):
            return f"file '{rel}' has no digest"
    artifacts = model.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        return "'model.artifacts' must name the artifacts"
    named = [*artifacts.values(), model.get("signature")]
    class_ref = model.get("class")
    if class_ref is not None:
        named.append(str(class_ref).rpartition(":")[0])
    for rel in named:
        if rel not in files:
            return f"'{rel}' is named by the model but not listed in 'files'"
    if not isinstance(model.get("name"), str) or not isinstance(model.get("version"), str):
        return "'model.name' and 'model.version' must be strings"
    if model.get("flavor") is None and class_ref is None:
        return "the model names neither a flavor nor a class"
    return None
