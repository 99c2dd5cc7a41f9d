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
from typing import Any

from mlbuild.cache import DIR_SUFFIX
from mlbuild.errors import MlbuildError, NotFoundError, UsageError
from mlbuild.graph import Workspace
from mlbuild.paths import UnsafePathError, is_within, normalise


def get_artifact(ws: Workspace, run: Any, path: str, output: Path, *, force: bool) -> Path:
    """Restore artifact ``path`` of ``run`` (or a file inside a directory artifact) to
    ``output``; the path written. Raises :class:`UsageError` when ``output`` exists and not
    ``force``, :class:`NotFoundError` when the run or the cache does not hold the artifact."""
    wanted = _wanted(run, path)
    digest = _artifact_digest(ws, run, wanted)
    dest = output / PurePosixPath(wanted).name if output.is_dir() else output
    exists = os.path.lexists(dest)
    if exists and not force:
        kind = "a directory" if dest.is_dir() and not dest.is_symlink() else "a file"
        raise UsageError(
            f"{dest} exists ({kind}); pass --force to replace it, or choose another -o"
        )
    ws.fence(ws.graph([])).check_output(dest)
    _place(ws, digest, dest, replace=exists)
    return dest


def _wanted(run: Any, path: str) -> str:
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


def _artifact_digest(ws: Workspace, run: Any, path: str) -> str:
    """The digest of ``path``: an artifact of ``run``, or a file inside a directory artifact."""
    recorded = []
    for artifact in run.artifacts:
        try:
            known = normalise(artifact.path)
        except UnsafePathError:
            continue  # a hostile record; never matched, never restored
        recorded.append(known)
        if not is_within(path, known):
            continue
        if not artifact.cached:
            raise NotFoundError(
                f"artifact {artifact.path} of run {run.id[:8]} is declared `cache: false`, so "
                "the cache never held it; only the workspace that made it has it"
            )
        if not ws.cache.objects.has_all(artifact.digest):
            raise NotFoundError(
                f"artifact {artifact.path} of run {run.id[:8]} ({artifact.digest[:12]}) is no "
                f"longer in the cache at {ws.cache.root} (removed by `mlbuild gc`, or recorded "
                f"on another machine); make it again with `mlbuild runs reproduce {run.id[:8]}`"
            )
        if path == known:
            return str(artifact.digest)
        relpath = path[len(known) + 1 :]
        for entry in ws.cache.objects.read_manifest(artifact.digest):
            if entry.relpath == relpath:
                return str(entry.digest)
        raise NotFoundError(f"{artifact.path} of run {run.id[:8]} holds no file {relpath}")
    close = difflib.get_close_matches(path, recorded, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise NotFoundError(
        f"run {run.id[:8]} has no artifact {path}{hint}; its artifacts: "
        f"{', '.join(recorded) or 'none'}"
    )


def _place(ws: Workspace, digest: str, dest: Path, *, replace: bool) -> None:
    """Restore ``digest`` beside ``dest`` first, then move it into place: a file by one rename,
    a directory by two (the old one aside, the new one in); the old one goes last."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {dest.parent}: {exc.strerror}") from None
    scratch = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".mlbuild-get-"))
    try:
        fresh = scratch / "new"
        ws.cache.objects.restore(digest, fresh)
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
