"""DVC's own version hash of a workspace path, computed without importing DVC.

DVC 3 (``hash: md5`` in a ``.dvc`` file or ``dvc.lock``) versions a file by the md5 of its bytes and
a directory by the md5 of its ``.dir`` manifest — the JSON list of ``{"md5", "relpath"}`` entries
sorted by relpath, as ``json.dumps(..., sort_keys=True)`` writes it — plus ``.dir``. Computing that
here lets a run verify a dataset whose files were touched without importing DVC (814 modules): only
the files whose stat changed are read again, the others keep the md5 recorded beside their stat.

When this module cannot be sure it computes what DVC would — a DVC 2 ``md5-dos2unix`` hash, a
``.dvcignore``, a symlink inside the dataset — it says so (:class:`Unsupported`) and the caller asks
DVC instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlbuild.data.snapshot import DVC_SKIPS, NotData, refuse_special
from mlbuild.data.version import Stat

_CHUNK = 1 << 20
# below this many bytes to read, threads cost more than they save
_PARALLEL_BYTES = 16 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


class Unsupported(Exception):
    """This path's DVC hash cannot be computed here with certainty; ask DVC."""


@dataclass
class Hashed:
    """A path's DVC hash, the stat of each file it covers and each file's md5 (by relpath)."""

    digest: str
    files: list[Stat]
    md5: dict[str, str] = field(default_factory=dict)


def dvc_hash(
    full: Path,
    known_files: Iterable[Stat],
    known_md5: dict[str, str],
    listed: list[Stat] | None = None,
) -> Hashed | None:
    """DVC 3's hash of the file or directory ``full``, ``None`` if it is absent.

    ``known_files`` and ``known_md5`` are what an earlier call returned: a file whose stat
    (inode, size, ctime) is unchanged keeps its md5 and is not read again. ``listed``: the
    directory's files as a :func:`~mlbuild.data.snapshot.snapshot` just listed them, when it saw
    neither a symlink nor a name DVC treats specially (:attr:`Snapshot.plain`); the directory
    is then not walked a second time (0.33 s CPU at 100,000 files).
    Raises :class:`Unsupported` for what DVC would hash differently from this module.
    """
    try:
        st = full.lstat()
    except FileNotFoundError:
        return None
    if full.is_symlink():
        if not full.exists() or full.is_dir() or full.is_file():
            raise Unsupported(f"{full} is a symlink")
        raise NotData(str(full), "a symlink to neither a file nor a directory")
    if not full.is_dir():
        stat: Stat = ["", st.st_ino, st.st_size, st.st_ctime_ns]
        digest = _reuse(stat, known_files, known_md5) or _md5_file(full)
        return Hashed(digest, [stat], {"": digest})
    files = listed if listed is not None else _walk(full)
    previous = {str(s[0]): s for s in known_files}
    md5: dict[str, str] = {}
    todo: list[Stat] = []
    for stat in files:
        rel = str(stat[0])
        if previous.get(rel) == stat and rel in known_md5:
            md5[rel] = known_md5[rel]
        else:
            todo.append(stat)
    for rel, digest in _hash_all(full, todo):
        md5[rel] = digest
    # ``files`` is sorted by relpath already, the order DVC sorts its manifest in; the text is
    # json.dumps(manifest, sort_keys=True) of DVC's entries, written without building 100,000
    # dicts (the relpath escaped by json's own encoder, as json.dumps escapes it)
    quote = json.encoder.encode_basestring_ascii
    entries = [f'{{"md5": "{md5[rel]}", "relpath": {quote(rel)}}}' for rel, *_ in files]
    body = f"[{', '.join(entries)}]".encode()
    return Hashed(hashlib.md5(body, usedforsecurity=False).hexdigest() + ".dir", files, md5)


def ignores_files(repo: Path, full: Path) -> bool:
    """Whether a ``.dvcignore`` between the DVC repository ``repo`` and ``full`` has a pattern
    (``dvc init`` writes one holding only comments, which ignores nothing)."""
    folder = full.parent
    while True:
        try:
            text = (folder / ".dvcignore").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError:
            return True
        if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            return True
        if folder in (repo, folder.parent):
            return False
        folder = folder.parent


def _reuse(stat: Stat, known_files: Iterable[Stat], known_md5: dict[str, str]) -> str | None:
    for old in known_files:
        if old == stat:
            return known_md5.get(str(stat[0]))
    return None


def _walk(top: Path) -> list[Stat]:
    """The stat of every file under ``top``, by posix relpath, sorted; what DVC would put in the
    manifest (files only: DVC records no empty directories). The whole tree is looked at before
    :class:`Unsupported` is raised for a symlink, so that a FIFO or a device anywhere in it is
    refused (:class:`NotData`) rather than left to DVC, which would open it."""
    found: list[Stat] = []
    unsupported = ""
    stack = [(str(top), "")]
    while stack:
        current, rel = stack.pop()
        # through the folder's descriptor: each stat is an fstatat of one name
        fd = os.open(current, _DIR_FLAGS)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    if entry.is_symlink():
                        refuse_special(entry, f"{current}/{name}")
                        unsupported = unsupported or f"{current}/{name} is a symlink"
                    elif name in DVC_SKIPS:
                        unsupported = unsupported or f"DVC treats {current}/{name} specially"
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append((f"{current}/{name}", f"{rel}{name}/"))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append([f"{rel}{name}", st.st_ino, st.st_size, st.st_ctime_ns])
                    else:
                        refuse_special(entry, f"{current}/{name}")
                        # (a file or folder again by now: replaced while walked)
                        unsupported = unsupported or f"{current}/{name} changed while walked"
        finally:
            os.close(fd)
    if unsupported:
        raise Unsupported(unsupported)
    return sorted(found, key=lambda s: str(s[0]))


def _hash_all(top: Path, todo: list[Stat]) -> list[tuple[str, str]]:
    rels = [str(s[0]) for s in todo]
    # below _PARALLEL_BYTES, threads cost more than they save
    threads = 1 if sum(int(s[2]) for s in todo) < _PARALLEL_BYTES else os.cpu_count() or 1
    digests = _md5_lanes([f"{top}/{rel}" for rel in rels], threads)
    if digests is not None:
        # a Path is made only for an error's message (100,000 of them cost 0.2 s)
        return [
            (rel, d if isinstance(d, str) else _checked(d, top / rel))
            for rel, d in zip(rels, digests, strict=True)
        ]

    def one(rel: str) -> tuple[str, str]:
        return rel, _md5_file(top / rel)

    if threads == 1 or len(todo) < 2:
        return [one(rel) for rel in rels]
    from concurrent.futures import ThreadPoolExecutor

    # hashlib releases the GIL on large updates: threads hash files on every core
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, rels))


def _md5_file(path: Path) -> str:
    digests = _md5_lanes([str(path)], 1)
    if digests is not None:
        return _checked(digests[0], path)
    digest = hashlib.md5(usedforsecurity=False)
    with open(_open_regular(path), "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_lanes(paths: list[str], threads: int) -> list[str | int] | None:
    """Each file's md5 (or an errno, or -1 for a path that is not a regular file) from the C
    extension, which hashes up to 24 files at once with AVX2 in each of ``threads`` threads
    (~6x hashlib's speed on 1 MiB files); ``None`` when the extension is not built (no C
    compiler at install time), unless ``MLBUILD_REQUIRE_MD5X=1`` (scripts/test) asks for it."""
    try:
        # (imported as a name of the package: import-linter sees no .py file for the extension)
        from mlbuild.data import _md5x
    except ImportError as exc:
        if os.environ.get("MLBUILD_REQUIRE_MD5X") == "1":
            raise ImportError(
                "MLBUILD_REQUIRE_MD5X=1 but the C extension mlbuild.data._md5x is not built: "
                "install with a C compiler (`pip install -e .`) or build it in place with "
                "`python setup.py build_ext --inplace`"
            ) from exc
        return None
    return _md5x.md5_files(paths, threads=threads)


def _checked(result: str | int, path: Path) -> str:
    """The digest, or the error the C extension reported for ``path`` raised as open() would."""
    if isinstance(result, str):
        return result
    if result == -1:
        raise NotData(str(path), "neither a file nor a directory")
    raise OSError(result, os.strerror(result), str(path))


def _open_regular(path: Path) -> int:
    """A descriptor of the regular file ``path``, for hashlib when the C extension is not built.
    A FIFO or a device is refused unread: opened without blocking (a FIFO opened for reading
    would wait for a writer), then checked with fstat."""
    import stat

    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotData(str(path), "neither a file nor a directory")
    except BaseException:
        os.close(fd)
        raise
    return fd
