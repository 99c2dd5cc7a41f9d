"""Secrets reach a container step's process as environment variables, without ever being part of
the container's configuration.

Environment variables set through the Engine API are stored in the container's configuration:
``docker inspect`` shows them to anyone who can reach the engine, for as long as the container
exists, and the engine writes them to its disk. So a step's secrets travel another way: each is
written to a file in a private directory on a memory filesystem (``/dev/shm``: never on disk;
the directory is the user's, mode 0700, each file 0600), that directory is bound read-only into
the container at :data:`TARGET`, and a small POSIX shell prelude reads each file into a variable
of the same name with the shell's ``read`` built-in — values are read as data, never parsed as
shell text — and then ``exec``\\ s the step's command. The directory is removed when the container
is; a run that was killed leaves it for the next run's leftover sweep.

What remains visible: the secrets' *names* (file names) in the bind's source path and in the
command line's prelude (the same for every step), and the values to whoever can enter the running
container (``docker exec``) — as anyone with access to the Docker engine is root on the machine
anyway. The image must have ``/bin/sh`` for a step with secrets.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlbuild.exec.sandbox import remove_tree

TARGET = "/run/mlbuild-secrets"
_PREFIX = "mlbuild-secrets-"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Each file holds the value and one newline; reading it line by line and joining the lines with
# newlines gives the value back exactly, trailing newlines included.
PRELUDE = f"""\
for f in {TARGET}/*; do
  [ -f "$f" ] || continue
  v=; sep=
  while IFS= read -r line; do v="$v$sep$line"; sep='
'; done < "$f"
  export "${{f##*/}}=$v"
done
unset f v sep line
exec "$@"
"""


@dataclass(frozen=True)
class SecretFiles:
    """One step's secret files, bound into its container."""

    folder: Path

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run by the prelude, with the secrets in its environment."""
        return ["/bin/sh", "-c", PRELUDE, "mlbuild-secrets", *argv]

    def remove(self) -> None:
        remove_tree(self.folder)


def write(values: dict[str, str], key: str, owner: tuple[int, int] | None) -> SecretFiles:
    """Write ``values`` (name → value) for a step of the workspace ``key`` (its label hash);
    ``owner`` (uid, gid) is the container's user when it is not this process's."""
    folder = Path(tempfile.mkdtemp(dir=base(), prefix=f"{_PREFIX}{key}-"))
    secrets = SecretFiles(folder)
    try:
        for name, value in values.items():
            if not _NAME.fullmatch(name):  # the recipe allows no other names; a file name is one
                raise ValueError(f"not an environment variable name: {name!r}")
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(value.encode("utf-8", "surrogateescape") + b"\n")
            if owner is not None:
                os.chown(folder / name, *owner)
        if owner is not None:
            os.chown(folder, *owner)
    except BaseException:
        secrets.remove()
        raise
    return secrets


def base() -> str:
    """Where secret files go: a memory filesystem when there is one."""
    shm = "/dev/shm"  # noqa: S108 - a private 0700 directory is made inside it
    if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return tempfile.gettempdir()


def left_behind(key: str, keep: set[str]) -> list[Path]:
    """Secret folders of the workspace ``key`` that no container in ``keep`` still uses."""
    root = Path(base())
    return [
        path
        for path in root.glob(f"{_PREFIX}{key}-*")
        if str(path) not in keep and path.is_dir() and path.stat().st_uid == os.getuid()
    ]
