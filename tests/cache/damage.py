"""Find objects and entries in a workspace's cache, and damage them the ways disks and people do."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from blake3 import blake3

from tests.conftest import Workspace

DAMAGES = ["flip", "truncate", "symlink", "directory"]


def cache_root(ws: Workspace) -> Path:
    return ws.root / ".mlbuild" / "cache"


def object_path(cache: Path, digest: str) -> Path:
    return cache / "objects" / digest[:2] / digest[2:]


def file_digest(path: Path) -> str:
    return str(blake3(path.read_bytes()).hexdigest())


def entry_of(cache: Path, step: str) -> tuple[Path, dict[str, Any]]:
    """The newest action entry written by ``step``."""
    found = []
    for path in (cache / "actions").glob("*/*.json"):
        raw = json.loads(path.read_text())
        if raw["step"] == step:
            found.append((path.stat().st_mtime, path, raw))
    assert found, f"no entry for step {step}"
    _, path, raw = max(found, key=lambda item: item[0])
    return path, raw


def manifest_of(cache: Path, digest: str) -> dict[str, str]:
    """relpath → digest of the files of directory object ``digest``."""
    body = json.loads(object_path(cache, digest).read_bytes())
    return {rel: dig for rel, dig, _, _ in body}


def damage(path: Path, how: str) -> None:
    """Damage the object at ``path`` in place: a flipped byte, half of it cut off, replaced by a
    symlink to a copy of its good bytes (a link is refused whatever it points to), or by a
    directory."""
    data = path.read_bytes()
    if how == "flip":
        middle = len(data) // 2
        with open(path, "r+b") as handle:  # root writes through the read-only bit
            handle.seek(middle)
            handle.write(bytes([data[middle] ^ 0x01]))
    elif how == "truncate":
        os.truncate(path, len(data) // 2)
    elif how == "symlink":
        elsewhere = path.parent.parent.parent / f"elsewhere-{path.name}"
        elsewhere.write_bytes(data)
        path.unlink()
        path.symlink_to(elsewhere)
    elif how == "directory":
        path.unlink()
        path.mkdir()
        (path / "inside").write_bytes(data)
    else:
        raise ValueError(how)


def quarantined(cache: Path) -> list[str]:
    folder = cache / "quarantine"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def is_intact(cache: Path, digest: str) -> bool:
    path = object_path(cache, digest)
    return path.is_file() and not path.is_symlink() and file_digest(path) == digest


def leftovers(folder: Path) -> list[str]:
    """Temporary files anywhere under ``folder``."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, symlinks=True)
