"""Content-addressed objects: files stored once by hash, verified whenever they are read.

Objects are read-only and written atomically (:mod:`mlbuild.atomic`), so a reader never sees a
partial object and a killed writer leaves only a temporary file (a dot-file) for ``gc``. Restored
files are copies (reflinks where the filesystem supports them), never hard links: a user or a step
editing a restored file in place must not change the cached object (root ignores the read-only bit).

Nothing in the cache is trusted because of where it is. Every copy out of the cache hashes the
bytes it copies and compares them with the digest the object is named by; a symlink, a folder, a
truncated or altered object is moved to quarantine and reported as :class:`CorruptObjectError`,
and the copy is never put in place. Callers treat that like a missing object: the step re-runs.
A cheaper check (:meth:`Objects.check`: type and size, no content read) lets ``plan`` catch a
truncated or swapped object before anything runs.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from mlbuild import atomic
from mlbuild.cache import manifest
from mlbuild.cache.copying import copy_hashed, hash_open
from mlbuild.cache.hashing import Digest, ManifestEntry
from mlbuild.cache.names import DIR_SUFFIX, check_digest
from mlbuild.cache.quarantine import move_aside
from mlbuild.errors import CacheError
from mlbuild.paths import Fence, UnsafePathError, inner


class MissingObjectError(CacheError):
    """An object an entry or a record names is not in the cache (``gc`` removed it)."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"cache object {digest} is missing")
        self.digest = digest


class CorruptObjectError(CacheError):
    """An object is not what its digest says; it was moved to quarantine (``moved_to``)."""

    def __init__(self, digest: str, problem: str, moved_to: Path | None) -> None:
        where = f"; moved to {moved_to}" if moved_to is not None else ""
        super().__init__(f"cache object {digest} {problem}{where}")
        self.digest = digest
        self.problem = problem
        self.moved_to = moved_to


BadObjectError = (MissingObjectError, CorruptObjectError)


class Objects:
    """Objects under ``root/<first two hex digits>/<rest>``; bad ones go to ``quarantine``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root.parent / "tmp"  # where older versions staged objects; gc empties it
        self.quarantine = root.parent / "quarantine"

    def path_of(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return os.path.lexists(self.path_of(digest))

    def check(self, digest: str, size: int | None = None) -> None:
        """Cheaply confirm object ``digest`` (and, for a directory, each file it lists) is there,
        a regular file, of the right size — reading only a manifest, never a file's content.

        Raises :class:`MissingObjectError`, or :class:`CorruptObjectError` after quarantining.
        """
        if not digest.endswith(DIR_SUFFIX):
            self._check_file(digest, size)
            return
        for entry in self.read_manifest(digest):
            self._check_file(entry.digest, entry.size)

    def holds(self, digest: str, size: int | None = None) -> bool:
        """Whether :meth:`check` passes: the object (and each file of a directory) is there, a
        regular file of the right size. A damaged one goes to quarantine on the way."""
        try:
            self.check(digest, size)
        except (MissingObjectError, CorruptObjectError):
            return False
        return True

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        """The files of directory object ``digest``, verified against its name."""
        fd, info = self._open(digest, None)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
        decoded = manifest.decode(digest, data)
        if isinstance(decoded, str):
            raise self._corrupt(digest, f"is a damaged manifest: it {decoded}", info.st_ino)
        return list(decoded)

    def put(self, source: Path, digest: Digest) -> None:
        """Store the file or directory at ``source`` whose content hashes to ``digest``.

        An object already present is kept only if it is intact (hashed again): a re-run that
        produces the same bytes repairs an object damaged since it was stored.
        """
        if digest.manifest is None:
            self._put_file(source, digest.value, digest.size)
            return
        for entry in digest.manifest:
            self._put_file(source / entry.relpath, entry.digest, entry.size)
        try:
            if self.read_manifest(digest.value) == list(digest.manifest):
                return
        except (MissingObjectError, CorruptObjectError):
            pass
        data = manifest.encode(digest.manifest)
        with atomic.replacing(self._target(digest.value), mode=0o444, size=len(data)) as tmp:
            tmp.write_bytes(data)

    def restore(
        self, digest: str, dest: Path, size: int | None = None, *, fence: Fence | None = None
    ) -> None:
        """Materialise object ``digest`` at ``dest`` (a file, or a directory tree), replacing
        what is there only once every byte has been copied and verified; ``fence``, when given,
        is asked first whether ``dest`` may be replaced.

        Raises :class:`MissingObjectError` or :class:`CorruptObjectError`; ``dest`` is then
        untouched.
        """
        if fence is not None:  # at the last moment: the workspace may have changed since plan
            fence.check_target(dest)
        if not digest.endswith(DIR_SUFFIX):
            with atomic.staging(dest, size=size) as tmp:
                self._copy_out(digest, tmp, size, executable=False)
            return
        entries = [(self._inner(digest, e.relpath), e) for e in self.read_manifest(digest)]
        with atomic.staging(dest, size=size) as tree:
            tree.mkdir()
            for relpath, entry in entries:
                target = tree / relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                self._copy_out(entry.digest, target, entry.size, executable=entry.executable)

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

    def _copy_out(self, digest: str, target: Path, size: int | None, *, executable: bool) -> None:
        fd, info = self._open(digest, size)
        with os.fdopen(fd, "rb", buffering=0) as src:
            out = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(out, 0o755 if executable else 0o644)
                copied = copy_hashed(src.fileno(), out, info.st_size)
            finally:
                os.close(out)
        if copied != digest:
            raise self._corrupt(digest, "does not match its digest (altered)", info.st_ino)

    def _put_file(self, source: Path, digest: str, size: int) -> None:
        if self._intact(digest, size):
            return
        with atomic.replacing(self._target(digest), mode=0o444, size=size) as tmp:
            with open(source, "rb", buffering=0) as src, open(tmp, "r+b", buffering=0) as dst:
                copied = copy_hashed(src.fileno(), dst.fileno(), size)
            if copied != digest:
                raise CacheError(
                    f"{source} changed while it was being stored in the cache (a process still "
                    "writing it?); run the step again"
                )

    def _intact(self, digest: str, size: int) -> bool:
        """Whether object ``digest`` is present and whole; a damaged one goes to quarantine."""
        try:
            fd, info = self._open(digest, size)
        except (MissingObjectError, CorruptObjectError):
            return False
        with os.fdopen(fd, "rb", buffering=0) as handle:
            if hash_open(handle.fileno()) == digest:
                return True
        move_aside(self.path_of(digest), self.quarantine, digest, inode=info.st_ino)
        return False

    def _check_file(self, digest: str, size: int | None) -> None:
        try:
            info = os.lstat(self.path_of(digest))
        except FileNotFoundError:
            raise MissingObjectError(digest) from None
        problem = _kind_problem(info, size)
        if problem is not None:
            raise self._corrupt(digest, problem, info.st_ino)

    def _open(self, digest: str, size: int | None) -> tuple[int, os.stat_result]:
        """Open object ``digest`` for reading, refusing anything but a regular file of ``size``."""
        path = self.path_of(digest)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise MissingObjectError(digest) from None
        except OSError as exc:
            found = os.lstat(path)
            why = _kind_problem(found, size) or f"cannot be read ({exc.strerror})"
            raise self._corrupt(digest, why, found.st_ino) from None
        info = os.fstat(fd)
        problem = _kind_problem(info, size)
        if problem is not None:
            os.close(fd)
            raise self._corrupt(digest, problem, info.st_ino)
        return fd, info

    def _corrupt(self, digest: str, problem: str, inode: int) -> CorruptObjectError:
        moved = move_aside(self.path_of(digest), self.quarantine, digest, inode=inode)
        return CorruptObjectError(digest, problem, moved)

    def _target(self, digest: str) -> Path:
        """Where a new copy of ``digest`` goes; a folder there (which a rename cannot replace;
        a file or a link it can) goes to quarantine first."""
        target = self.path_of(digest)
        # not through a symlink (maybe out of the workspace) or file put at the cache, its
        # objects or the shard
        atomic.own_folder(target.parent, below=self.root.parent)
        if target.is_dir() and not target.is_symlink():
            move_aside(target, self.quarantine, digest)
        return target


def _kind_problem(info: os.stat_result, size: int | None) -> str | None:
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if size is not None and info.st_size != size:
        return f"is {info.st_size} bytes, expected {size} (truncated or altered)"
    return None


def remove(path: Path) -> None:
    """Delete a file, link or directory tree if it exists."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
