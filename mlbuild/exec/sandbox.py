"""What a container step sees of the workspace: its inputs read-only, its outputs writable, and
nothing else; and how its outputs come back.

The container sees the workspace at the same absolute path, but that path is a fresh, empty
*scratch* directory of the host (under ``.mlbuild/containers/``), bound writable. Each declared
input is bound read-only on top of it at its own place; an input that holds an output (a
``data/`` dep with a ``data/prepared/`` out) is bound entry by entry around the output. So:

- an undeclared file is simply not there (hermetic steps: a missing dep fails, it does not
  silently work);
- the process may write anywhere in the workspace — an output written by rename, a file output at
  the root, a directory output, temporary files — and everything lands in the scratch directory;
- when the container is gone, each declared output is moved (renamed: same filesystem) from the
  scratch into the workspace, and the rest of the scratch, whatever the process left, is deleted.

A ``persist: true`` output that exists starts from its previous content: a directory is bound
writable at its place (the step updates it in place, as a local step would; the directory itself
cannot be replaced by a rename, only its contents), a file is copied into the scratch and moved
back. The mount points are made beforehand, owned by the step's user: the engine would make them
owned by root, and the step could not write beside its inputs.

Paths inside the scratch are the step's doing: an output is collected only if no directory on its
way is a symlink (which would make the move reach outside the scratch), and a symlink inside an
input resolves inside the container, where only the declared inputs exist.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mlbuild.errors import MlbuildError
from mlbuild.paths import GIT_DIR, META_DIR, UnsafePathError, is_within, normalise

SCRATCH_DIR = "containers"  # under .mlbuild/
_PLAIN = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Bind:
    """A host path bound into the container at ``target`` (an absolute path)."""

    source: str
    target: str
    read_only: bool


@dataclass
class Sandbox:
    """The scratch directory of one container step and the binds that make its view."""

    scratch: Path
    workspace: Path
    outputs: list[str]
    binds: list[Bind] = field(default_factory=list)
    bound_outputs: set[str] = field(default_factory=set)  # persisted directories, bound in place
    copied_outputs: set[str] = field(default_factory=set)  # persisted files, copied in

    def collect(self, owner: tuple[int, int] | None = None) -> None:
        """Move each output the step made from the scratch into the workspace; with ``owner``
        (the step ran as another user), hand what is collected back to ``owner``."""
        for out in self.outputs:
            if out in self.bound_outputs:
                if owner is not None:
                    _chown_tree(self.workspace / out, owner)
                continue
            source = self.scratch / out
            if not _plain_parents(self.scratch, out) or not os.path.lexists(source):
                continue  # not made (a symlink on the way is not a way out): the scheduler says so
            target = self.workspace / out
            if os.path.lexists(target) and out not in self.copied_outputs:
                raise MlbuildError(
                    f"cannot collect output {out} from the container: something else put it in "
                    "the workspace while the step ran; remove it and run again"
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if owner is not None:
                    _chown_tree(source, owner)
                _move(source, target)
            except OSError as exc:
                raise MlbuildError(
                    f"cannot collect output {out} from the container: {exc.strerror}"
                ) from None

    def discard(self) -> None:
        """Delete the scratch directory and whatever the step left in it."""
        remove_tree(self.scratch)


def prepare(
    workspace: Path,
    step: str,
    inputs: list[str],
    outputs: list[str],
    foreign: tuple[int, int] | None = None,
) -> Sandbox:
    """Make the scratch directory of ``step`` and the binds of its inputs and outputs. With
    ``foreign`` (uid, gid: the step runs as another user, which only root may ask for), the
    scratch and the persisted outputs are given to that user, so it can write them."""
    # the scheduler checked the paths; checked again, as every bind and move is built from them
    ins = _unique(inputs)
    outs = _unique(outputs)
    for out in outs:
        if out.split("/")[0].casefold() in (META_DIR, GIT_DIR):
            raise UnsafePathError(out, f"is inside {out.split('/')[0]}; a step cannot write there")
    folder = workspace / META_DIR / SCRATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # the step's name is part of a file name (``train.k2j4x1``): only its plain characters
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=f"{_PLAIN.sub('_', step)[:64]}."))
    box = Sandbox(scratch, workspace, outs)
    try:
        box.binds.append(Bind(str(scratch), str(workspace), read_only=False))
        for path in ins:
            if any(is_within(path, o) for o in outs) or not os.path.lexists(workspace / path):
                continue  # an output's own content, or nothing to show
            if any(is_within(path, p) and p != path for p in ins):
                continue  # inside another input, bound with it
            _show(box, path, [o for o in outs if is_within(o, path) and o != path])
        for out in outs:
            _prepare_output(box, out)
        if foreign is not None:
            _chown_tree(scratch, foreign)
            for out in box.bound_outputs:
                _chown_tree(workspace / out, foreign)
    except BaseException:
        box.discard()
        raise
    return box


def _show(box: Sandbox, path: str, holes: list[str]) -> None:
    """Bind input ``path`` read-only; around ``holes`` (outputs inside it), entry by entry."""
    source = box.workspace / path
    if not holes:
        real = source.resolve()
        if not is_within(str(real), str(box.workspace.resolve())):
            raise MlbuildError(
                f"input {path} now leads outside the workspace (to {real}); a container step "
                "sees only the workspace's own files"
            )
        _mount_point(box.scratch / path, is_dir=real.is_dir())
        # the resolved path: the engine follows links in a source, so give it none to follow
        box.binds.append(Bind(str(real), str(box.workspace / path), read_only=True))
        return
    if source.is_symlink():
        raise MlbuildError(
            f"cannot run in a container: output {holes[0]} lies under {path}, which is a "
            "symlink; declare the directory it points to instead"
        )
    if not source.is_dir():
        raise MlbuildError(
            f"cannot run in a container: output {holes[0]} lies under input {path}, which is "
            "not a directory"
        )
    (box.scratch / path).mkdir(parents=True, exist_ok=True)
    for entry in sorted(os.listdir(source)):
        child = f"{path}/{entry}"
        if child in holes:
            continue
        inner = [h for h in holes if is_within(h, child)]
        if not inner and (source / entry).is_symlink():
            os.symlink(os.readlink(source / entry), box.scratch / child)  # resolves in there
        else:
            _show(box, child, inner)


def _prepare_output(box: Sandbox, out: str) -> None:
    """Make the output's parent in the scratch; bring a persisted output's previous content."""
    here = box.workspace / out
    inside = box.scratch / out
    inside.parent.mkdir(parents=True, exist_ok=True)
    if here.is_dir() and not here.is_symlink():
        _mount_point(inside, is_dir=True)
        box.binds.append(Bind(str(here), str(here), read_only=False))
        box.bound_outputs.add(out)
    elif here.is_symlink():
        os.symlink(os.readlink(here), inside)
        box.copied_outputs.add(out)
    elif here.exists():
        shutil.copy2(here, inside)
        box.copied_outputs.add(out)


def _mount_point(path: Path, *, is_dir: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        path.mkdir(exist_ok=True)
    else:
        path.touch(exist_ok=True)


def _unique(paths: list[str]) -> list[str]:
    """Normalised (``data/`` → ``data``), without repeats, in order; a path that is absolute,
    climbs out with ``..`` or names the root is refused (:class:`UnsafePathError`)."""
    seen: dict[str, None] = {}
    for path in paths:
        seen.setdefault(normalise(path, where="the workspace"), None)
    return list(seen)


def _plain_parents(root: Path, rel: str) -> bool:
    """Is every directory between ``root`` and ``rel`` a real directory, not a symlink?"""
    current = root
    for part in Path(rel).parts[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return False
        except OSError:
            return False
    return True


def _move(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, keeping its mode (a directory the step made read-only
    is opened for the move: moving it to another parent rewrites its ``..``)."""
    mode = os.lstat(source).st_mode
    opened = stat.S_ISDIR(mode) and not mode & stat.S_IWUSR
    if opened:
        os.chmod(source, stat.S_IMODE(mode) | stat.S_IWUSR)
    try:
        _rename(source, target)
    finally:
        if opened:
            os.chmod(target if os.path.lexists(target) else source, stat.S_IMODE(mode))


def _rename(source: Path, target: Path) -> None:
    """``os.replace``; across filesystems (``.mlbuild`` mounted elsewhere), a copy beside the
    target first, then a rename, so the output appears whole or not at all."""
    try:
        os.replace(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staged = target.with_name(f".{target.name}.collecting")
    remove_tree(staged)
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, staged, symlinks=True)
    else:
        shutil.copy2(source, staged, follow_symlinks=False)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(staged, target)


def _chown_tree(root: Path, owner: tuple[int, int]) -> None:
    """Give ``root`` and everything below it to ``owner``, symlinks themselves (never their
    targets); a no-op when they are already its."""
    uid, gid = owner
    for path in _walk(root):
        info = os.lstat(path)
        if (info.st_uid, info.st_gid) != (uid, gid):
            os.lchown(path, uid, gid)


def _walk(root: Path) -> list[Path]:
    if not os.path.lexists(root):
        return []
    found = [root]
    if root.is_dir() and not root.is_symlink():
        for folder, dirs, files in os.walk(root):
            found += [Path(folder) / name for name in [*dirs, *files]]
    return found


def remove_tree(path: Path) -> None:
    """Delete ``path`` (file, link or tree) if it exists, even where the step took away its own
    write permission on a directory."""
    if os.path.islink(path) or path.is_file():
        path.unlink()
        return
    if not path.is_dir():
        return
    try:
        shutil.rmtree(path)
        return
    except PermissionError:
        pass
    _own_rwx(path)
    for folder, dirs, _ in os.walk(path):  # top-down: each is opened up before it is entered
        for name in dirs:
            _own_rwx(Path(folder) / name)
    shutil.rmtree(path)


def _own_rwx(folder: Path) -> None:
    with contextlib.suppress(OSError):
        if not folder.is_symlink():
            os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | stat.S_IRWXU)
