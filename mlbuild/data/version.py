"""Data versions read from DVC's own metadata, without importing DVC.

A DVC-tracked path's version is the md5 DVC wrote in its ``.dvc`` file (or in ``dvc.lock`` for a
pipeline output); a directory's is DVC's ``.dir`` manifest hash. Nothing is re-hashed: to know the
workspace still holds that version, mlbuild keeps the stat of every file it last saw verified
(:mod:`mlbuild.data.snapshot`), so a no-op run costs one ``stat`` per file. What a ``.dvc`` file
says is remembered by its stat too (:func:`recorded_out`): a run whose ``.dvc`` files did not
change parses no YAML (PyYAML's import alone is ~20 ms of a 0.1 s command).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlbuild import atomic, racy

# re-exported: mlbuild.data.md5 and mlbuild.review read them from here
from mlbuild.data.snapshot import Record, Stat, read_record
from mlbuild.errors import MlbuildError

__all__ = ["Record", "Stat", "read_record"]

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


# ---- what a .dvc file says, remembered by its stat ----------------------------------------------


def recorded_out(root: Path, meta: Path, path: str) -> TrackedOut | None:
    """:func:`find_dvc_out`, answered without parsing ``PATH.dvc`` when its stat (inode, size,
    mtime, ctime) is the one it had when it was last parsed.

    The memo (``.mlbuild/data/dvcfiles/*.json``) is written only for a ``.dvc`` file whose ctime
    was more than one timestamp tick old when it was read (:mod:`mlbuild.racy`): one edited again
    within that tick would keep its stat. Any edit after that moves the ctime, which no one can
    set back. A memo that does not read back whole, or names another path, is parsed anew.
    """
    dvc_file = root / f"{path}.dvc"
    try:
        st = os.stat(dvc_file)
    except OSError:
        return find_dvc_out(root, path)
    if not stat.S_ISREG(st.st_mode):
        return find_dvc_out(root, path)
    stamp = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    memo = meta / "data" / _DVC_FILES / f"{_name(path)}.json"
    remembered = _read_memo(memo, path, stamp)
    if remembered is not None:
        return remembered
    found = find_dvc_out(root, path)
    if found is not None and st.st_ctime_ns <= racy.cutoff():
        body = {"path": path, "stamp": stamp, **asdict(found)}
        with contextlib.suppress(OSError, UnicodeError):  # a memo only saves a parse
            atomic.write_json(memo, body, sync=False)
    return found


_DVC_FILES = "dvcfiles"


def _name(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _read_memo(memo: Path, path: str, stamp: list[int]) -> TrackedOut | None:
    try:
        raw = json.loads(atomic.read_own(memo))
    except (OSError, ValueError):
        return None
    if not (isinstance(raw, dict) and raw.get("path") == path and raw.get("stamp") == stamp):
        return None
    digest, tracked_in, hash_name = raw.get("digest"), raw.get("tracked_in"), raw.get("hash_name")
    if not (isinstance(digest, str) and isinstance(tracked_in, str) and isinstance(hash_name, str)):
        return None
    return TrackedOut(digest, tracked_in, hash_name)
