"""Atomic file writes: the one way mlbuild replaces a file, so a reader sees all of it or none.

:func:`replacing` is the mechanism; :func:`write_bytes`, :func:`write_text` and :func:`write_json`
are it for data in memory. A temporary file beside the target is filled, flushed to disk
(``fsync``), renamed over the target, and the directory is flushed so the rename survives a crash.
On any error — a full disk, Ctrl-C, a bug in the caller's fill — the temporary file is removed
and the target is untouched. A full disk (or quota) raises :class:`DiskFullError` naming the file
and the bytes it needed.

:func:`staging` is the same for a directory tree (a restored output): its contents are checked by
hash on every later run, so it skips the flushes that an object or an entry needs.

A flush costs 1–10 ms (more on a busy disk): state that is derived, or re-checked when read (the
compiled graph, step records, data records, the run journal), is written with ``sync=False`` —
a crash may lose the last write, never leave a torn file. Cache objects and entries, which other
clones rely on, are always flushed.

A repository is hostile input: a folder of mlbuild's own state (``.mlbuild/…``) may have been
committed, or made by a step, as a symlink out of the workspace, a file or a FIFO.
:func:`planted` says so of a folder, so that nothing is written or removed through it (or
:func:`own_folder` refuses it by name, where mlbuild cannot do without the folder), and
:func:`read_own` reads a file mlbuild wrote without following a symlink or waiting on a FIFO.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlbuild.errors import DiskFullError, PlantedError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # errnos of a full disk or quota


@contextlib.contextmanager
def replacing(
    target: Path, *, mode: int = 0o644, size: int | None = None, sync: bool = True
) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` to fill; on a normal exit it becomes ``target``.

    ``size`` (the bytes the fill will write, when known) goes into a disk-full message. ``sync``
    false skips the two flushes, for copies that are verified again before they are trusted.
    """
    folder = target.parent
    tmp: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name[:200]}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        yield tmp
        os.chmod(tmp, mode)
        if sync:
            _fsync_file(tmp)
        os.replace(tmp, target)
        tmp = None
        if sync:
            fsync_dir(folder)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise disk_full(target, size) from None
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def staging(target: Path, *, size: int | None = None) -> Iterator[Path]:
    """Yield a path that does not exist yet, in a private folder beside ``target``; fill it with
    a file or a directory tree. On a normal exit whatever is at ``target`` (file, link or tree) is
    replaced by it; on any error nothing at ``target`` changes and the folder is removed."""
    folder = target.parent
    stage: Path | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=f".{target.name[:200]}.", suffix=".tmp"))
        filled = stage / target.name
        yield filled
        _clear_for(filled, target)
        os.replace(filled, target)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise disk_full(target, size) from None
        raise
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def _clear_for(filled: Path, target: Path) -> None:
    """Remove what a rename of ``filled`` could not replace: a directory (unless ``filled`` is a
    file renamed over a link or file, which is atomic), or anything when ``filled`` is a tree."""
    if target.is_symlink() or not target.exists():
        if filled.is_dir() and target.is_symlink():
            target.unlink()
        return
    if target.is_dir():
        shutil.rmtree(target)
    elif filled.is_dir():
        target.unlink()


def write_bytes(target: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """Replace ``target`` with ``data``, atomically (and durably unless ``sync`` is false)."""
    with replacing(target, mode=mode, size=len(data), sync=sync) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str, *, mode: int = 0o644, sync: bool = True) -> None:
    """Replace ``target`` with ``text`` in UTF-8, atomically (and durably unless ``sync`` is
    false)."""
    write_bytes(target, text.encode("utf-8"), mode=mode, sync=sync)


def write_json(
    target: Path,
    data: object,
    *,
    sort_keys: bool = False,
    indent: int | None = None,
    sync: bool = True,
) -> None:
    """Replace ``target`` with ``data`` as JSON, atomically (and durably unless ``sync`` is
    false)."""
    write_text(target, json.dumps(data, sort_keys=sort_keys, indent=indent), sync=sync)


def special_kind(mode: int) -> str:
    """What a path of ``mode`` is when it is neither a file nor a folder (a FIFO, a socket, a
    device): the one wording of every refusal to open one (opening a FIFO waits for a writer
    for ever, a device never ends)."""
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return f"a special file (mode {mode:o})"


def planted(folder: Path) -> bool:
    """Whether something other than a folder stands at ``folder`` (a symlink, maybe out of the
    workspace; a file; a FIFO): a folder of mlbuild's own state that is neither written, read nor
    pruned then. A missing folder is not planted (a write creates it)."""
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return False
    except OSError:  # a parent that is a file, a folder that cannot be searched
        return True
    return not stat.S_ISDIR(mode)


def planted_file(path: Path) -> bool:
    """Whether something other than a file of mlbuild's own stands at ``path``: a symlink (maybe
    out of the workspace), a FIFO, a folder, or a file hardlinked elsewhere (a user's file, which
    a write in place, as SQLite's, would change). A missing file is not planted."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return not stat.S_ISREG(info.st_mode) or info.st_nlink != 1


def own_folder(folder: Path, below: Path | None = None) -> Path:
    """``folder``, a folder of mlbuild's own state that it cannot do without; raises
    :class:`PlantedError` naming what stands there instead (see :func:`planted`). With ``below``
    (``.mlbuild``, which holds ``folder``), each folder from ``below`` down is checked too: a
    step may have replaced any of them while the run went on."""
    if below is not None:
        for rel in reversed(folder.relative_to(below).parents):
            own_folder(below / rel)
    if planted(folder):
        raise planted_error(folder)
    return folder


def planted_error(path: Path) -> PlantedError:
    """The error for ``path``, where something stands that mlbuild did not make."""
    try:
        what = f"a symlink to {os.readlink(path)}" if path.is_symlink() else _kind(path)
    except OSError:
        what = "not what mlbuild made"
    elsewhere = (
        " (to keep the cache on another disk, set MLBUILD_CACHE_DIR instead of a symlink)"
        if path.name in (".mlbuild", "cache")
        else ""
    )
    return PlantedError(
        f"{path} is {what}, not what mlbuild keeps there; mlbuild neither writes, reads nor "
        f"removes anything through it: remove it (mlbuild makes its own) and run again{elsewhere}"
    )


def _kind(path: Path) -> str:
    info = os.lstat(path)
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        links = info.st_nlink - 1
        return "a file" if not links else f"a file with {links} other hard link(s) elsewhere"
    return special_kind(mode)


def read_own(path: Path, limit: int | None = None) -> bytes:
    """The bytes of ``path``, a file mlbuild wrote: not through a symlink (``ELOOP``), nor
    waiting on a FIFO or a device planted there; :class:`OSError` when it is not a regular file
    or holds more than ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise OSError(errno.EFBIG, f"more than {limit} bytes", str(path))
    return data


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename into it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a filesystem that cannot flush directories
            raise
    finally:
        os.close(fd)


def disk_full(path: Path, needed: int | None) -> DiskFullError:
    """The error for a write to ``path`` that ran out of space, with what it needed."""
    free = _free_bytes(path)
    amounts = [f"{needed:,} bytes needed" if needed is not None else ""]
    amounts.append(f"{free:,} bytes free" if free is not None else "")
    detail = ", ".join(a for a in amounts if a)
    return DiskFullError(
        f"no space left on the device to write {path}"
        + (f" ({detail})" if detail else "")
        + "; free some space (`mlbuild gc` removes cached results nothing uses) and try again"
    )


def _free_bytes(path: Path) -> int | None:
    for folder in [path.parent, *path.parents]:
        with contextlib.suppress(OSError):
            return shutil.disk_usage(folder).free
    return None


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
