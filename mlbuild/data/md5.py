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

from mlbuild.data.version import Stat

_CHUNK = 1 << 20
# below this many bytes to read, threads cost more than they save
_PARALLEL_BYTES = 16 << 20
# names DVC leaves out of a directory's manifest, or that change what it leaves out
_DVC_SKIPS = frozenset({".dvcignore", ".git", ".hg", ".dvc"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


class Unsupported(Exception):
    """This path's DVC hash cannot be computed here with certainty; ask DVC."""


@dataclass
class Hashed:
    """A path's DVC hash, the stat of each file it covers and each file's md5 (by relpath)."""

    digest: str
    files: list[Stat]
    md5: dict[str, str] = field(default_factory=dict)


def dvc_hash(full: Path, known_files: Iterable[Stat], known_md5: dict[str, str]) -> Hashed | None:
    """DVC 3's hash of the file or directory ``full``, ``None`` if it is absent.

    ``known_files`` and ``known_md5`` are what an earlier call returned: a file whose stat
    (inode, size, ctime) is unchanged keeps its md5 and is not read again.
    Raises :class:`Unsupported` for what DVC would hash differently from this module.
    """
    try:
        st = full.lstat()
    except FileNotFoundError:
        return None
    if full.is_symlink():
        raise Unsupported(f"{full} is a symlink")
    if not full.is_dir():
        stat: Stat = ["", st.st_ino, st.st_size, st.st_ctime_ns]
        digest = _reuse(stat, known_files, known_md5) or _md5_file(full)
        return Hashed(digest, [stat], {"": digest})
    files = _walk(full)
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
    manifest (files only: DVC records no empty directories)."""
    found: list[Stat] = []
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
                        raise Unsupported(f"{current}/{name} is a symlink")
                    if name in _DVC_SKIPS:
                        raise Unsupported(f"DVC treats {current}/{name} specially")
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{current}/{name}", f"{rel}{name}/"))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append([f"{rel}{name}", st.st_ino, st.st_size, st.st_ctime_ns])
                    else:
                        raise Unsupported(f"{current}/{name} is neither a file nor a directory")
        finally:
            os.close(fd)
    return sorted(found, key=lambda s: str(s[0]))


def _hash_all(top: Path, todo: list[Stat]) -> list[tuple[str, str]]:
    def one(stat: Stat) -> tuple[str, str]:
        return str(stat[0]), _md5_file(top / str(stat[0]))

    if sum(int(s[2]) for s in todo) < _PARALLEL_BYTES or len(todo) < 2:
        return [one(s) for s in todo]
    from concurrent.futures import ThreadPoolExecutor

    # hashlib releases the GIL on large updates: threads hash files on every core
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, todo))


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
