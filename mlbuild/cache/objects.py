"""Content-addressed objects: files stored once by hash, restored as independent copies.

Objects are read-only and written atomically (temporary file, then rename), so a reader never sees
a partial object and a killed writer leaves only a temporary file for ``gc`` to remove. Restored
files are copies (reflinks where the filesystem supports them), never hard links: a user or a step
editing a restored file in place must not change the cached object (root ignores the read-only bit).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlbuild.cache.hashing import DIR_SUFFIX, Digest, ManifestEntry
from mlbuild.errors import CacheError
from mlbuild.paths import Fence, UnsafePathError, inner

_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks, copy-on-write


class ObjectStore:
    """Objects under ``root/<first two hex digits>/<rest>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root.parent / "tmp"

    def path_of(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path_of(digest).exists()

    def has_all(self, digest: str) -> bool:
        """The object and, for a directory, every file it lists."""
        if not self.has(digest):
            return False
        if digest.endswith(DIR_SUFFIX):
            return all(self.has(e.digest) for e in self.read_manifest(digest))
        return True

    def put(self, source: Path, digest: Digest) -> None:
        """Store the file or directory at ``source`` whose content hashes to ``digest``."""
        if digest.manifest is None:
            self._put_file(source, digest.value)
            return
        for entry in digest.manifest:
            self._put_file(source / entry.relpath, entry.digest)
        body = [[e.relpath, e.digest, e.size, e.executable] for e in digest.manifest]
        data = json.dumps(body).encode()
        self._write_atomic(digest.value, lambda tmp: _write_bytes(tmp, data))

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        try:
            body = json.loads(self.path_of(digest).read_bytes())
        except (OSError, ValueError) as exc:
            raise CacheError(
                f"cache object {digest} is unreadable ({exc}); run `mlbuild gc`"
            ) from None
        return [ManifestEntry(rel, dig, size, bool(x)) for rel, dig, size, x in body]

    def restore(self, digest: str, dest: Path, *, fence: Fence | None = None) -> None:
        """Materialise object ``digest`` at ``dest`` (a file, or a directory tree), replacing
        what is there; ``fence``, when given, is asked first whether ``dest`` may be replaced."""
        if fence is not None:  # at the last moment: the workspace may have changed since plan
            fence.check_target(dest)
        if not digest.endswith(DIR_SUFFIX):
            remove(dest)
            self._restore_file(digest, dest, executable=False)
            return
        files = [(self._inner(digest, e.relpath), e) for e in self.read_manifest(digest)]
        remove(dest)
        dest.mkdir(parents=True)
        for relpath, entry in files:
            target = dest / relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            self._restore_file(entry.digest, target, executable=entry.executable)

    def _inner(self, digest: str, relpath: str) -> str:
        """An entry of directory object ``digest``, checked before anything is touched: a
        manifest is read back from the cache, which other clones may write."""
        try:
            return inner(relpath)
        except UnsafePathError:
            raise CacheError(
                f"cache object {digest} lists the file '{relpath}', outside its directory or in "
                f".git or .mlbuild, so mlbuild did not write it; delete {self.path_of(digest)} "
                "and run again"
            ) from None

    def _restore_file(self, digest: str, dest: Path, *, executable: bool) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = self.path_of(digest)
        tmp = dest.with_name(f".{dest.name}.mlbuild-tmp")
        try:
            _clone_or_copy(source, tmp)
        except FileNotFoundError:
            raise CacheError(f"cache object {digest} for {dest} is missing") from None
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, dest)

    def _put_file(self, source: Path, digest: str) -> None:
        if not self.has(digest):
            self._write_atomic(digest, lambda tmp: _clone_or_copy(source, tmp))

    def _write_atomic(self, digest: str, fill: Callable[[Path], None]) -> None:
        target = self.path_of(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=digest[:16])
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            fill(tmp)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _clone_or_copy(source: Path, dest: Path) -> None:
    """Reflink ``source`` to ``dest`` where the filesystem can, else copy the bytes."""
    with open(source, "rb") as src, open(dest, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                raise
        shutil.copyfileobj(src, dst, 1 << 20)


def remove(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
