"""Where a run comes from: the git revision of the workspace, the user and the machine.

Git is asked through its command line with argument lists (never a shell string), once with
``git status --porcelain=v2 --branch``; a directory outside any repository, a repository without
commits or a missing ``git`` give no git information rather than an error. Untracked files do not
make a workspace dirty (outputs and scratch files would make every run dirty); changes to tracked
files do, and the hash of ``git diff HEAD`` tells two dirty states apart.
"""

from __future__ import annotations

import getpass
import os
import socket
from pathlib import Path

from mlbuild.cache import hash_bytes
from mlbuild.git import git as _git
from mlbuild.store import GitInfo


def git_info(root: Path) -> GitInfo | None:
    """The commit, branch and dirty state of the repository holding ``root``, if any."""
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    if status is None:
        return None
    commit = branch = None
    dirty = False
    for line in status.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            commit = line.split()[2]
        elif line.startswith("# branch.head "):
            branch = line.split(maxsplit=2)[2]
        elif line and not line.startswith("#"):
            dirty = True
    if commit is None or commit == "(initial)":
        return None
    diff_hash = None
    if dirty:
        diff = _git(root, "diff", "HEAD", "--binary", "--no-ext-diff", "--no-color")
        diff_hash = hash_bytes(diff) if diff is not None else None
    return GitInfo(commit, None if branch == "(detached)" else branch, dirty, diff_hash)


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def host_name() -> str:
    return socket.gethostname()
