"""Copy a file and hash the bytes on the way: how every object is stored, restored and served.

The hash is of what the copy holds, so a copy is verified for the price of hashing it — the bytes
are read once. Where the filesystem can share blocks (a reflink: btrfs, XFS), the copy costs
nothing and the new file is hashed instead.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from mlbuild.cache.hashing import new_hash

_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks, copy-on-write
_NO_REFLINK = (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EBADF)
_CHUNK = 1 << 20


def copy_hashed(src: int, dst: int, size: int) -> str:
    """Copy the open file ``src`` into the empty file ``dst`` (opened for reading and writing);
    the BLAKE3 digest of the bytes ``dst`` now holds. ``size`` is ``src``'s size."""
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError as exc:
        if exc.errno not in _NO_REFLINK:
            raise
    else:
        return hash_open(dst, size)
    hasher = new_hash(size)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        count = os.readv(src, [buffer])
        if not count:
            break
        chunk = view[:count]
        hasher.update(chunk)
        while chunk:
            chunk = chunk[os.write(dst, chunk) :]
    return str(hasher.hexdigest())


def hash_open(fd: int, size: int) -> str:
    """The BLAKE3 digest of the open file ``fd``, read from its start."""
    hasher = new_hash(size)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    offset = 0
    while True:
        count = os.preadv(fd, [buffer], offset)
        if not count:
            break
        hasher.update(view[:count])
        offset += count
    return str(hasher.hexdigest())


def hash_regular_file(path: Path) -> str | None:
    """The digest of the regular file at ``path`` (a symlink is not followed), or ``None`` when
    there is no regular file there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        return hash_open(fd, info.st_size) if stat.S_ISREG(info.st_mode) else None
    finally:
        os.close(fd)
