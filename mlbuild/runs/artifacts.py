"""``mlbuild runs get``: an artifact of a recorded run, restored from the cache to where the user
says — without ever deleting what is there.

Like ``cp``: ``-o DIR`` for an existing directory writes ``DIR/<name>``; an existing destination is
replaced only with ``force``, and then only that file or directory, swapped in once it is complete
(a failure leaves the old one as it was). Artifact paths come from a run record, which a team
store shares, so a recorded path that is absolute or climbs out (``../x``) is refused, as is a
file of a directory object that would land outside it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from mlbuild.cache import (
    DIR_SUFFIX,
    CorruptObjectError,
    MissingObjectError,
    NotAnOutputError,
    NotInOutputError,
    OutRecord,
    UncachedOutputError,
    UnusableOutputError,
    locate,
)
from mlbuild.errors import CacheError, MlbuildError, NotFoundError, UsageError
from mlbuild.graph import Workspace
from mlbuild.paths import UnsafePathError, normalise
from mlbuild.store import RunRecord


def get_artifact(ws: Workspace, run: RunRecord, path: str, output: Path, *, force: bool) -> Path:
    """Restore artifact ``path`` of ``run`` (or a file inside a directory artifact) to
    ``output``; the path written. Raises :class:`UsageError` when ``output`` exists and not
    ``force``, :class:`NotFoundError` when the run or the cache does not hold the artifact."""
    wanted = _wanted(run, path)
    digest, size = _artifact_digest(ws, run, wanted)
    dest = output / PurePosixPath(wanted).name if output.is_dir() else output
    exists = os.path.lexists(dest)
    if exists and not force:
        kind = "a directory" if dest.is_dir() and not dest.is_symlink() else "a file"
        raise UsageError(
            f"{dest} exists ({kind}); pass --force to replace it, or choose another -o"
        )
    ws.fence(ws.graph([])).check_output(dest)
    try:  # verified as it is copied; nothing is written unless every byte is right
        _place(ws, digest, size, dest, replace=exists)
    except (MissingObjectError, CorruptObjectError) as exc:
        raise _unusable(ws, run, wanted, exc) from None
    return dest


def _wanted(run: RunRecord, path: str) -> str:
    """The requested path, normalised; a hostile recorded path it names is refused as such."""
    for artifact in run.artifacts:
        if artifact.path.rstrip("/") == path.rstrip("/"):
            try:
                normalise(artifact.path)
            except UnsafePathError as exc:
                raise UsageError(
                    f"run {run.id[:8]} records the artifact {exc.message.split(';')[0]}; "
                    "mlbuild never records such a path, so the record was altered: "
                    "refusing to restore it"
                ) from None
    try:
        return normalise(path)
    except UnsafePathError as exc:
        raise UsageError(f"{exc.message} (PATH names an artifact of the run)") from None


def _artifact_digest(ws: Workspace, run: RunRecord, path: str) -> tuple[str, int]:
    """The digest and size of ``path``: an artifact of ``run``, or a file inside a directory
    artifact; checked cheaply (type and size) to be in the cache."""
    outs: dict[str, OutRecord] = {}
    for artifact in run.artifacts:
        with contextlib.suppress(UnsafePathError):  # a hostile record: never matched or restored
            outs[normalise(artifact.path)] = OutRecord(
                artifact.digest, artifact.size, artifact.cached
            )
    try:
        found = locate(ws.cache.objects, outs, path)
    except UncachedOutputError as exc:
        raise NotFoundError(
            f"artifact {exc.out} of run {run.id[:8]} is declared `cache: false`, so "
            "the cache never held it; only the workspace that made it has it"
        ) from None
    except UnusableOutputError as exc:
        raise _unusable(ws, run, exc.out, exc.cause) from None
    except NotInOutputError as exc:
        relpath = path[len(exc.out) + 1 :]
        raise NotFoundError(f"{exc.out} of run {run.id[:8]} holds no file {relpath}") from None
    except NotAnOutputError:
        close = difflib.get_close_matches(path, list(outs), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise NotFoundError(
            f"run {run.id[:8]} has no artifact {path}{hint}; its artifacts: "
            f"{', '.join(outs) or 'none'}"
        ) from None
    try:  # cheaply, before anything is written: a gone object gets its own advice
        ws.cache.objects.check(found.record.digest, found.record.size)
    except (MissingObjectError, CorruptObjectError) as exc:
        raise _unusable(ws, run, found.out, exc) from None
    return found.digest, found.size


def _unusable(
    ws: Workspace, run: RunRecord, path: str, exc: MissingObjectError | CorruptObjectError
) -> MlbuildError:
    """The error for an artifact whose cached copy is gone or bad (and now in quarantine)."""
    remake = f"make it again with `mlbuild runs reproduce {run.id[:8]}`"
    if isinstance(exc, MissingObjectError):
        return NotFoundError(
            f"artifact {path} of run {run.id[:8]} is no longer in the cache at {ws.cache.root} "
            f"(removed by `mlbuild gc`, or recorded on another machine); {remake}"
        )
    return CacheError(
        f"artifact {path} of run {run.id[:8]} is corrupt in the cache ({exc.message}); "
        f"nothing was written; {remake}"
    )


def _place(ws: Workspace, digest: str, size: int, dest: Path, *, replace: bool) -> None:
    """Restore ``digest`` beside ``dest`` first, then move it into place: a file by one rename,
    a directory by two (the old one aside, the new one in); the old one goes last."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {dest.parent}: {exc.strerror}") from None
    scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".mlbuild-get-"))
    try:
        fresh = scratch / "new"
        ws.cache.objects.restore(digest, fresh, size)
        if not replace:
            _put_new(fresh, dest)
        elif not (dest.is_dir() and not dest.is_symlink()) and not digest.endswith(DIR_SUFFIX):
            os.replace(fresh, dest)  # atomic; a symlink is replaced, never written through
        else:
            os.rename(dest, scratch / "old")
            try:
                os.rename(fresh, dest)
            except OSError:
                os.rename(scratch / "old", dest)  # put the old one back as it was
                raise
    except FileExistsError:
        raise UsageError(f"{dest} appeared while restoring; nothing was replaced") from None
    except OSError as exc:
        raise MlbuildError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)


def _put_new(fresh: Path, dest: Path) -> None:
    """Move ``fresh`` to ``dest``, which must not exist: never overwrite what appeared since."""
    if fresh.is_dir():
        os.rename(fresh, dest)  # fails on a file or a non-empty directory that appeared
        return
    try:
        os.link(fresh, dest)  # fails, unlike rename, if dest appeared
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links
        if os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.rename(fresh, dest)
