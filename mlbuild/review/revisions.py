"""The two sides ``mlbuild diff`` compares: git revisions, recipe files or the working tree.

A revision is never checked out: its recipe directory is copied out of git's object database
(``git ls-tree`` then ``git cat-file --batch``, argument lists only) into
``.mlbuild/review/trees/<tree id>/``. A tree id names content, so a copy once complete is reused by
every later diff (its compiled graph and file hashes with it) and needs no invalidation.

What git hands over is not trusted: paths with ``..``, ``.git`` or ``.mlbuild`` components are
skipped, files are written before any symlink exists (so no write follows one), and a symlink is
kept only if it resolves inside the copy. A recipe that is itself a symlink out of the repository
is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlbuild.errors import UsageError
from mlbuild.git import git
from mlbuild.paths import GIT_DIR, META_DIR

TREES = "review/trees"  # below .mlbuild
_KEEP_TREES = 8  # materialised revisions kept; the least recently used go first
_SKIPPED = {GIT_DIR, META_DIR}
_WORKTREE = "working tree"


@dataclass(frozen=True)
class Side:
    """One side of a diff. ``root`` holds the recipe's workspace (a copy, for a revision);
    ``meta`` keeps this side's compiled graphs and file hashes."""

    label: str  # as the user named it: "main", "HEAD~1", "working tree", "old.yaml"
    kind: str  # "revision" | "worktree" | "file"
    root: Path
    recipe: Path
    meta: Path
    commit: str | None = None  # the revision's commit; HEAD's for the working tree
    skipped: tuple[str, ...] = ()  # entries of a revision not copied, and why
    where: str = ""  # the recipe as messages name it: "main:sub/ml.yaml", "old.yaml"

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "kind": self.kind, "commit": self.commit}


@dataclass(frozen=True)
class Repo:
    """The git repository around a workspace, and where the recipe sits in it."""

    top: Path
    workspace: str  # the workspace directory relative to ``top`` ("" at the top)
    recipe: str  # the recipe's file name


def find_repo(root: Path, recipe: Path) -> Repo | None:
    out = git(root, "rev-parse", "--show-toplevel")
    if out is None:
        return None
    top = Path(os.fsdecode(out.strip())).resolve()
    try:
        rel = root.resolve().relative_to(top)
    except ValueError:
        return None
    return Repo(top, "" if str(rel) == "." else rel.as_posix(), recipe.name)


def resolve_sides(root: Path, recipe: Path, meta: Path, names: list[str]) -> tuple[Side, Side]:
    """The sides named by ``names`` (none, one or two words; ``A..B`` and ``A...B`` as git
    reads them). Without a second side the working tree is compared; without any, the merge
    base of the default branch and ``HEAD`` is the first."""
    if len(names) > 2:
        raise UsageError(
            f"expected at most two revisions or recipe files, got {len(names)}: {' '.join(names)}"
        )
    repo = find_repo(root, recipe)
    worktree = _worktree(root, recipe, meta, repo)
    if len(names) == 1 and ".." in names[0] and not _is_recipe_file(names[0]):
        repo = _need_repo(repo, names[0])
        dots = "..." if "..." in names[0] else ".."
        first, second = (part or "HEAD" for part in names[0].split(dots, 1))
        if dots == "...":
            base = _merge_base(repo, first, second)
            return (
                _revision(repo, meta, base, f"{first}...{second} (merge base)"),
                _revision(repo, meta, second, second),
            )
        return _revision(repo, meta, first, first), _revision(repo, meta, second, second)
    if not names:
        repo = _need_repo(repo, "the default comparison")
        branch = default_branch(repo)
        base = _merge_base(repo, branch, "HEAD")
        return _revision(repo, meta, base, f"{branch} (merge base)"), worktree
    sides = [_side(repo, meta, name) for name in names]
    return (sides[0], sides[1] if len(sides) == 2 else worktree)


def _side(repo: Repo | None, meta: Path, name: str) -> Side:
    if _is_recipe_file(name):
        path = Path(name).absolute()
        # each directory has its own file hashes and compiled graphs
        key = hashlib.sha256(os.fsencode(path.parent)).hexdigest()[:16]
        return Side(name, "file", path.parent, path, meta / "review" / "files" / key, where=name)
    return _revision(_need_repo(repo, name), meta, name, name)


def _is_recipe_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and Path(name).is_file()


def _worktree(root: Path, recipe: Path, meta: Path, repo: Repo | None) -> Side:
    head = _commit(repo, "HEAD") if repo is not None else None
    return Side(_WORKTREE, "worktree", root, recipe, meta, head, where=os.path.relpath(recipe))


def _need_repo(repo: Repo | None, what: str) -> Repo:
    if repo is None:
        raise UsageError(
            f"{what}: the workspace is not in a git repository, so there are no revisions; "
            "compare two recipe files instead: mlbuild diff OLD.yaml NEW.yaml"
        )
    return repo


def check_revision_name(name: str) -> None:
    """Refuse what git could read as an option or that no ref can be: ``-x``, control bytes."""
    if name.startswith("-"):
        raise UsageError(
            f"'{name}' is not a revision: a revision never starts with '-' (to compare against "
            "a file of that name, write ./" + name + ")"
        )
    if not name or any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 1024:
        shown = name[:60].encode("unicode_escape").decode("ascii")
        raise UsageError(f"'{shown}' is not a revision name")


def _commit(repo: Repo | None, name: str) -> str | None:
    if repo is None:
        return None
    out = git(
        repo.top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"
    )
    return out.decode("ascii").strip() if out else None


def _resolve(repo: Repo, name: str) -> str:
    check_revision_name(name)
    commit = _commit(repo, name)
    if commit is None:
        raise UsageError(
            f"unknown revision '{name}'; name a branch, tag or commit (`git log --oneline` "
            "lists commits)"
        )
    return commit


def _merge_base(repo: Repo, first: str, second: str) -> str:
    a, b = _resolve(repo, first), _resolve(repo, second)
    out = git(repo.top, "merge-base", a, b)
    if not out:
        raise UsageError(f"'{first}' and '{second}' have no common ancestor; name both sides")
    return out.decode("ascii").strip()


def default_branch(repo: Repo) -> str:
    """The branch merge requests target: GitLab's ``CI_DEFAULT_BRANCH``, else ``origin/HEAD``,
    else ``main`` or ``master`` (remote-tracking first)."""
    candidates = []
    ci = os.environ.get("CI_DEFAULT_BRANCH")
    if ci:
        candidates += [f"origin/{ci}", ci]
    head = git(repo.top, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if head:
        candidates.append(head.decode("utf-8", "replace").strip().removeprefix("refs/remotes/"))
    candidates += ["origin/main", "main", "origin/master", "master"]
    for name in candidates:
        if not name.startswith("-") and _commit(repo, name):
            return name
    raise UsageError(
        "cannot tell the default branch (no origin/HEAD, main or master); name the base "
        "revision: mlbuild diff BASE [HEAD]"
    )


def _revision(repo: Repo, meta: Path, name: str, label: str) -> Side:
    commit = _resolve(repo, name)
    if label == name and label.lower() == commit:  # a full commit id: shown as git shows it
        label = commit[:12]
    where = f"{repo.workspace}/{repo.recipe}" if repo.workspace else repo.recipe
    entry = _ls_tree(repo.top, commit, where)
    if entry is None:
        raise UsageError(
            f"revision '{label}' ({commit[:12]}) has no {where}: the recipe did not exist "
            "there yet, or it moved; name another revision"
        )
    mode, kind, _ = entry
    if kind != "blob":
        raise UsageError(f"at revision '{label}', {where} is not a file")
    spec = f"{commit}:{repo.workspace}" if repo.workspace else f"{commit}^{{tree}}"
    tree_id = (git(repo.top, "rev-parse", "--verify", "--quiet", spec) or b"").decode().strip()
    if not tree_id:
        raise UsageError(f"revision '{label}' ({commit[:12]}) has no {repo.workspace}/")
    folder, skipped = materialise(repo.top, tree_id, meta / TREES)
    recipe = folder / "tree" / repo.recipe
    if mode == "120000" and not recipe.is_file():
        raise UsageError(
            f"at revision '{label}', {where} is a symlink that leads out of the repository; "
            "mlbuild reads a recipe only from inside it"
        )
    return Side(
        label,
        "revision",
        folder / "tree",
        recipe,
        folder / "meta",
        commit,
        skipped,
        f"{label if label in (name, commit[:12]) else commit[:12]}:{where}",  # git's REV:PATH
    )


def _ls_tree(top: Path, commit: str, path: str) -> tuple[str, str, str] | None:
    out = git(top, "ls-tree", "-z", "--full-tree", commit, "--", path)
    if not out:
        return None
    info, _, _ = out.rstrip(b"\0").partition(b"\t")
    mode, kind, oid = info.decode("ascii").split()
    return mode, kind, oid


# ---- copying a tree out of git ----------------------------------------------------------------


def materialise(top: Path, tree_id: str, trees: Path) -> tuple[Path, tuple[str, ...]]:
    """``trees/<tree_id>`` holding the tree's files in ``tree/`` (made once, atomically), and
    the entries that were not copied with the reason."""
    folder = trees / tree_id
    if (folder / "tree").is_dir():
        os.utime(folder)  # recently used: kept by the pruning below
        return folder, _read_skipped(folder)
    trees.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=trees, prefix=".tmp-"))
    try:
        skipped = _copy_tree(top, tree_id, staging / "tree")
        (staging / "skipped.txt").write_text("".join(f"{s}\n" for s in skipped), "utf-8")
        try:
            staging.rename(folder)
        except OSError:  # another diff finished the same tree first: use that one
            if not (folder / "tree").is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(trees)
    return folder, _read_skipped(folder)


def _read_skipped(folder: Path) -> tuple[str, ...]:
    try:
        return tuple((folder / "skipped.txt").read_text("utf-8").splitlines())
    except OSError:
        return ()


def _prune(trees: Path) -> None:
    folders = sorted(
        (p for p in trees.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
    )
    for old in folders[:-_KEEP_TREES]:
        shutil.rmtree(old, ignore_errors=True)


def _copy_tree(top: Path, tree_id: str, dest: Path) -> list[str]:
    listing = git(top, "ls-tree", "-r", "-z", tree_id)
    if listing is None:
        raise UsageError(f"git cannot list tree {tree_id}")
    files: list[tuple[str, str, str]] = []
    links: list[tuple[str, str]] = []
    skipped: list[str] = []
    for record in listing.split(b"\0"):
        if not record:
            continue
        info, _, raw_path = record.partition(b"\t")
        mode, kind, oid = info.decode("ascii").split()
        path = os.fsdecode(raw_path)
        refusal = _refuse(path)
        if refusal:
            skipped.append(f"{path}: {refusal}")
        elif kind != "blob":
            skipped.append(f"{path}: a submodule; its files are not copied")
        elif mode == "120000":
            links.append((path, oid))
        else:
            files.append((path, oid, mode))
    dest.mkdir(parents=True)
    pointees: dict[str, bytes] = {}
    with _Blobs(top) as blobs:
        for path, oid, mode in files:  # every file before any symlink: no write follows a link
            target = dest / path
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(target, flags, 0o755 if mode == "100755" else 0o644)
            with os.fdopen(fd, "wb") as handle:
                blobs.copy(oid, handle)
        for _, oid in links:
            pointees[oid] = blobs.read(oid)
    made = []
    for path, oid in links:
        pointee = os.fsdecode(pointees[oid])
        lexical = posixpath.normpath(posixpath.join(posixpath.dirname(path), pointee))
        if posixpath.isabs(pointee) or lexical == ".." or lexical.startswith("../"):
            skipped.append(f"{path}: a symlink to '{pointee}', outside the repository")
            continue
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(pointee, dest / path)
        made.append((path, pointee))
    real_dest = os.path.realpath(dest)
    for path, pointee in made:  # a chain of links can still lead out: check where each ends
        real = os.path.realpath(dest / path)
        if real != real_dest and not real.startswith(real_dest + os.sep):
            os.unlink(dest / path)
            skipped.append(f"{path}: a symlink to '{pointee}', outside the repository")
    return skipped


def _refuse(path: str) -> str | None:
    parts = path.split("/")
    if posixpath.isabs(path) or any(p in ("", ".", "..") for p in parts):
        return "not a plain relative path"
    if any(p.lower() in _SKIPPED for p in parts):
        return "inside .git or .mlbuild, which mlbuild never reads from a revision"
    return None


class _Blobs:
    """Blob contents through one ``git cat-file --batch`` process, copied in chunks."""

    def __init__(self, top: Path) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("git") or "git", "cat-file", "--batch"],
            cwd=top,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )

    def __enter__(self) -> _Blobs:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait()

    def copy(self, oid: str, out: BinaryIO) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{oid}\n".encode("ascii"))
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise UsageError(f"git cannot read object {oid}")
        left = int(header[2])
        while left:
            chunk = self.proc.stdout.read(min(left, 1 << 20))
            if not chunk:
                raise UsageError(f"git stopped in the middle of object {oid}")
            out.write(chunk)
            left -= len(chunk)
        self.proc.stdout.read(1)  # the newline after each object

    def read(self, oid: str) -> bytes:
        buffer = io.BytesIO()
        self.copy(oid, buffer)
        return buffer.getvalue()
