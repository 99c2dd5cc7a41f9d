"""Data versions read from DVC's own metadata, without importing DVC.

A DVC-tracked path's version is the md5 DVC wrote in its ``.dvc`` file (or in ``dvc.lock`` for a
pipeline output); a directory's is DVC's ``.dir`` manifest hash. Nothing is re-hashed: to know the
workspace still holds that version, mlbuild keeps the stat of every file it last saw verified
(``.mlbuild/data/NAME.json``), so a no-op run costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from mlbuild import atomic
from mlbuild.errors import MlbuildError

Kind = str  # "dvc" | "import" | "file"


class DataError(MlbuildError):
    """A dataset cannot be versioned or made present; the message names it and the fix."""


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as the recipe declares it (paths relative to the workspace)."""

    name: str
    path: str
    dvc: bool | None = None
    remote: str | None = None
    import_repo: str | None = None
    import_rev: str | None = None
    import_path: str | None = None


@dataclass(frozen=True)
class DataVersion:
    """What a run records about a dataset."""

    name: str
    path: str
    kind: Kind
    hash: str
    remote: str | None = None
    repo: str | None = None
    rev: str | None = None
    commit: str | None = None
    tracked_in: str | None = None  # the .dvc file or dvc.lock that holds the hash
    present: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line with everything a run records: ``dvc 8048d9a2… path=data/x.csv remote=s3``."""
        parts = [self.kind, self.hash, f"path={self.path}"]
        if self.tracked_in:
            parts.append(f"in={self.tracked_in}")
        if self.repo:
            parts += [f"repo={self.repo}", f"rev={self.rev or 'HEAD'}", f"commit={self.commit}"]
        if self.remote:
            parts.append(f"remote={self.remote}")
        return " ".join(parts)


def find_dvc_hash(root: Path, path: str) -> tuple[str, str] | None:
    """``(hash, where)`` for a DVC-tracked ``path``: from ``PATH.dvc`` or a ``dvc.lock`` output.

    Raises :class:`DataError` for a malformed ``.dvc`` file.
    """
    found = find_dvc_out(root, path)
    return None if found is None else (found.digest, found.tracked_in)


@dataclass(frozen=True)
class TrackedOut:
    """A DVC-tracked path's recorded hash, where it is recorded and DVC's name for the hash."""

    digest: str
    tracked_in: str
    hash_name: str  # "md5" (DVC 3) or "md5-dos2unix" (DVC 2 files, text normalised)


def find_dvc_out(root: Path, path: str) -> TrackedOut | None:
    """The recorded DVC version of ``path``: from ``PATH.dvc`` or a ``dvc.lock`` output.

    Raises :class:`DataError` for a malformed ``.dvc`` file.
    """
    dvc_file = root / f"{path}.dvc"
    if dvc_file.is_file():
        data = _load_yaml(dvc_file, f"{path}.dvc")
        outs = data.get("outs") if isinstance(data, dict) else None
        if not isinstance(outs, list) or not outs or not isinstance(outs[0], dict):
            raise DataError(
                f"{path}.dvc is malformed: expected an 'outs' list with the tracked path; "
                f"recreate it with `dvc add {path}`"
            )
        out = outs[0]
        digest = out.get("md5") or out.get("etag") or out.get("checksum")
        if not isinstance(digest, str):
            raise DataError(
                f"{path}.dvc has no md5 for {out.get('path', path)}; it was never committed: run "
                f"`dvc commit {path}.dvc` or `dvc add {path}`"
            )
        return TrackedOut(digest, f"{path}.dvc", _hash_name(out))
    return _lock_out(root, path)


def _lock_out(root: Path, path: str) -> TrackedOut | None:
    """``path`` as an output of a stage in ``dvc.lock`` (a stage's deps are listed there too,
    and are not tracked by it)."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return None
    data = _load_yaml(lock, "dvc.lock")
    stages = data.get("stages", {}) if isinstance(data, dict) else {}
    for stage in stages.values() if isinstance(stages, dict) else []:
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            if isinstance(out, dict) and os.path.normpath(str(out.get("path"))) == path:
                return TrackedOut(str(out.get("md5")), "dvc.lock", _hash_name(out))
    return None


def _hash_name(out: dict[str, Any]) -> str:
    # DVC 3 writes ``hash: md5`` beside each output it hashed with plain md5; an entry without it
    # comes from DVC 2, whose md5 of a text file is taken with CRLF turned into LF
    if "md5" not in out:
        return "other"
    return "md5" if out.get("hash") == "md5" else "md5-dos2unix"


def _load_yaml(file: Path, display: str) -> Any:
    from mlbuild.recipe import safe_load_yaml

    try:
        return safe_load_yaml(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise DataError(f"{display} is malformed ({reason}); fix or recreate it") from None


def dvc_repo_root(root: Path) -> Path | None:
    for folder in [root, *root.parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def resolve_kind(root: Path, spec: DatasetSpec) -> Kind:
    """Which kind of dataset ``spec`` is, in the workspace as it is now."""
    if spec.import_repo is not None:
        return "import"
    if spec.dvc is False:
        return "file"
    tracked = (root / f"{spec.path}.dvc").is_file() or _in_lock(root, spec.path)
    if tracked:
        return "dvc"
    if spec.dvc:
        where = (
            "no DVC repository here (run `dvc init`)"
            if dvc_repo_root(root) is None
            else (f"no {spec.path}.dvc and no dvc.lock output for it")
        )
        raise DataError(
            f"dataset '{spec.name}' ({spec.path}) is declared `dvc: true` but DVC does not track "
            f"it: {where}; track it with `dvc add {spec.path}`"
        )
    return "file"


def _in_lock(root: Path, path: str) -> bool:
    lock = root / "dvc.lock"
    # the text test is cheap and rules out most paths; only a stage's output is tracked by DVC
    if not (lock.is_file() and path in lock.read_text(encoding="utf-8", errors="replace")):
        return False
    return _lock_out(root, path) is not None


# ---- the stat record that proves the workspace still holds a verified version -----------------

# [relpath, inode, size, ctime_ns]: the ctime, not the mtime, which anyone can set back (a file
# rewritten in place with its size kept and its mtime restored looked verified as it was)
Stat = list[Any]


def snapshot(full: Path) -> list[Stat] | None:
    """The stat of every file under ``full`` (or of the file), or ``None`` if it is absent."""
    try:
        st = full.stat()
    except FileNotFoundError:
        return None
    if not full.is_dir():
        return [["", st.st_ino, st.st_size, st.st_ctime_ns]]
    found: list[Stat] = []
    add = found.append
    stack = [(str(full), "")]
    while stack:
        current, rel = stack.pop()
        # listed through the folder's descriptor: each stat is an fstatat of one name, not a
        # walk of the full path by the kernel (a fifth of the system time at 100,000 files)
        fd = os.open(current, _DIR_FLAGS)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    # DVC leaves a symlinked directory out of a tracked directory (and a link
                    # back up the tree would be walked forever); a symlinked file it reads through
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((f"{current}/{entry.name}", f"{rel}{entry.name}/"))
                    elif entry.is_file():
                        est = entry.stat()
                        add([f"{rel}{entry.name}", est.st_ino, est.st_size, est.st_ctime_ns])
        finally:
            os.close(fd)
    # relpaths are unique: sorting by them alone is the order of the whole lists, in C
    found.sort(key=itemgetter(0))
    return found


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Record:
    """What mlbuild last verified about a dataset's workspace copy."""

    version: str
    files: list[Stat]
    source: dict[str, Any] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)  # by relpath, for the stats in ``files``


def read_record(meta: Path, name: str) -> Record | None:
    try:
        raw = json.loads((meta / "data" / f"{name}.json").read_text(encoding="utf-8"))
        md5 = raw.get("md5", {})
        if not isinstance(md5, dict) or not all(map(_is_md5, md5.values())):
            md5 = {}  # a damaged record only costs a re-read
        return Record(raw["version"], raw["files"], raw.get("source", {}), md5)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_md5(value: object) -> bool:
    # a set test in C: a record of 100,000 files checks 100,000 of these
    return isinstance(value, str) and len(value) == 32 and _HEX.issuperset(value)


_HEX = frozenset("0123456789abcdef")


def write_record(meta: Path, name: str, record: Record) -> None:
    # derived data, rebuilt if lost; its fields by hand: ``asdict`` deep-copies 100,000 stat lists
    body = {
        "version": record.version,
        "files": record.files,
        "source": record.source,
        "md5": record.md5,
    }
    atomic.write_json(meta / "data" / f"{name}.json", body, sync=False)
    # and, apart, all a no-op run needs: reading the record of a dataset of 100,000 files
    # (stats and md5s) cost more than stat-ing them. Written second: one left behind by a
    # crash still says only what was true, that these stats were verified as that version
    write_verified(meta, name, record.version, record.files)


def write_verified(meta: Path, name: str, version: str, files: list[Stat]) -> None:
    """Remember that dataset ``name``, its files with the stats ``files``, is ``version``."""
    summary = {"version": version, "files": stats_digest(files)}
    atomic.write_json(meta / "data" / _VERIFIED / f"{name}.json", summary, sync=False)


_VERIFIED = "verified"


def stats_digest(files: list[Stat]) -> str:
    """One hash of a list of file stats: equal exactly when the lists are (each relpath is
    prefixed by its length, so no name can pass for a field or for another entry)."""
    text = "".join([f"{len(rel)}:{rel}{ino},{size},{stamp};" for rel, ino, size, stamp in files])
    # a file name need not be UTF-8: hash the bytes the file system holds for it
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def is_verified(meta: Path, name: str, version: str, files: list[Stat]) -> bool:
    """Whether the workspace copy of dataset ``name``, whose files have the stats ``files`` now,
    was verified as ``version`` with exactly these stats (by :func:`write_record`)."""
    try:
        raw = json.loads((meta / "data" / _VERIFIED / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(raw, dict)
        and raw.get("version") == version
        and raw.get("files") == stats_digest(files)
    )
