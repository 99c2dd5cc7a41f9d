"""The one atomic-write helper: all of the new file or none of it, never a temporary left behind."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlbuild import atomic
from mlbuild.errors import DiskFullError


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_the_file_whole_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "entry.json"
    atomic.write_json(target, {"b": 1, "a": [2]}, sort_keys=True)
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    atomic.write_bytes(target, b"ro", mode=0o444)
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert files(target.parent) == ["entry.json"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError, OSError])
def test_an_error_while_filling_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, error: type[BaseException]
) -> None:
    target = tmp_path / "entry.json"
    target.write_text("old")
    with pytest.raises(error), atomic.replacing(target) as tmp:
        tmp.write_text("half of the new")
        raise error()
    assert target.read_text() == "old"
    assert files(tmp_path) == ["entry.json"]


def test_staging_replaces_a_tree_with_a_file_and_back_or_leaves_it(tmp_path: Path) -> None:
    target = tmp_path / "out"
    (target / "sub").mkdir(parents=True)
    (target / "sub" / "x").write_text("tree")
    with atomic.staging(target) as filled:
        filled.write_text("file")
    assert target.read_text() == "file"
    with pytest.raises(RuntimeError), atomic.staging(target) as filled:
        filled.mkdir()
        raise RuntimeError
    assert target.read_text() == "file"
    with atomic.staging(target) as filled:
        (filled / "y").parent.mkdir()
        (filled / "y").write_text("tree again")
    assert (target / "y").read_text() == "tree again"
    target.rename(tmp_path / "elsewhere")
    target.symlink_to(tmp_path / "elsewhere")
    with atomic.staging(target) as filled:
        filled.mkdir()
    assert target.is_dir() and not target.is_symlink()
    assert (tmp_path / "elsewhere" / "y").read_text() == "tree again"  # a link is not followed
    assert files(tmp_path) == ["elsewhere", "out"]


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs the tests as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_disk_names_the_file_and_the_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "64k") as disk:
        (disk / "entry.json").write_text("old")
        with pytest.raises(DiskFullError) as caught:
            atomic.write_bytes(disk / "entry.json", b"x" * 200_000)
        assert re.fullmatch(
            rf"no space left on the device to write {disk}/entry\.json \(200,000 bytes needed, "
            r"[\d,]+ bytes free\); free some space \(`mlbuild gc` removes cached results nothing "
            r"uses\) and try again",
            caught.value.message,
        )
        assert (disk / "entry.json").read_text() == "old"
        assert files(disk) == ["entry.json"]
