"""The image's symbol stripper (mlbuild/package/elfstrip.py) on real libraries and hostile bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlbuild.package.elfstrip import link_duplicates, strip, strip_tree


def uvloop_copy(tmp_path: Path) -> Path:
    import uvloop

    folder = tmp_path / "site"
    shutil.copytree(Path(uvloop.__file__).parent, folder / "uvloop")
    return folder


def sections(path: Path) -> list[str]:
    """The section names binutils' readelf reads from ``path``'s header table (it complains on
    stderr about a table that points at the wrong place)."""
    done = subprocess.run(["readelf", "-SW", str(path)], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    return [line.split("]", 1)[1].split()[0] for line in done.stdout.splitlines() if "] ." in line]


def dynamic_symbols(path: Path) -> str:
    done = subprocess.run(
        ["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True, check=True
    )
    assert done.stderr == "" and "PyInit_loop" in done.stdout
    return done.stdout


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_a_stripped_library_is_smaller_and_still_loads(tmp_path: Path) -> None:
    site = uvloop_copy(tmp_path)
    (library,) = (site / "uvloop").glob("loop.*.so")
    before = library.stat().st_size
    names = sections(library)
    symbols = dynamic_symbols(library)
    count, saved = strip_tree(str(site))
    assert count >= 1 and saved == before - library.stat().st_size > before // 2
    assert strip(library.read_bytes()) is None  # nothing left to strip: stable
    dropped = {".symtab", ".strtab"} | {n for n in names if n.startswith(".debug")}
    assert {".symtab", ".debug_info"} <= dropped
    assert sections(library) == [n for n in names if n not in dropped]
    assert dynamic_symbols(library) == symbols  # what the loader links by: linked tables intact
    done = subprocess.run(
        [sys.executable, "-c", "import uvloop; loop = uvloop.new_event_loop(); "
         "loop.run_until_complete(loop.create_task(__import__('asyncio').sleep(0))); "
         "print(uvloop.__file__)"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "uvloop" / "__init__.py")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an ELF file at all",
        b"\x7fELF",  # truncated header
        b"\x7fELF\x01\x01" + b"\0" * 100,  # 32-bit
        b"\x7fELF\x02\x02" + b"\0" * 100,  # big-endian
        b"\x7fELF\x02\x01" + bytes(range(256)) * 4,  # garbage offsets
    ],
)
def test_what_is_not_a_plain_64_bit_library_is_left_alone(data: bytes) -> None:
    assert strip(data) is None


def test_a_truncated_library_is_left_alone(tmp_path: Path) -> None:
    site = uvloop_copy(tmp_path)
    (library,) = (site / "uvloop").glob("loop.*.so")
    data = library.read_bytes()
    for size in (64, 4096, len(data) // 2, len(data) - 1):
        assert strip(data[:size]) is None


def test_symlinks_and_other_files_are_not_touched(tmp_path: Path) -> None:
    site = uvloop_copy(tmp_path)
    (library,) = (site / "uvloop").glob("loop.*.so")
    outside = tmp_path / "outside.so"
    shutil.copyfile(library, outside)
    (site / "link.so").symlink_to(outside)
    (site / "notes.txt").write_text("\x7fELF but text")
    strip_tree(str(site))
    assert outside.read_bytes() == library.read_bytes() or outside.stat().st_size > 0
    assert (site / "notes.txt").read_text() == "\x7fELF but text"
    assert strip(outside.read_bytes()) is not None  # still unstripped: the link was skipped


def numpy_copy(tmp_path: Path) -> Path:
    import numpy

    installed = Path(numpy.__file__).parent
    folder = tmp_path / "site"
    shutil.copytree(installed, folder / "numpy", ignore=shutil.ignore_patterns("tests"))
    shutil.copytree(installed.with_name("numpy.libs"), folder / "numpy.libs")
    return folder


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_a_library_patchelf_extended_is_stripped_and_still_computes(tmp_path: Path) -> None:
    # auditwheel's patchelf appends loaded segments after the symbol table (numpy's OpenBLAS):
    # the loaded part is moved back by whole pages, the program headers with it
    site = numpy_copy(tmp_path)
    (blas,) = (site / "numpy.libs").glob("libscipy_openblas*.so")
    before = blas.stat().st_size
    names = sections(blas)
    assert names.index(".symtab") < names.index(".dynamic")  # the layout this test is about
    strip_tree(str(site))
    assert before - blas.stat().st_size > 500_000
    assert sections(blas) == [n for n in names if n not in (".symtab", ".strtab")]
    assert strip(blas.read_bytes()) is None
    probe = (
        "import numpy as np; a = np.arange(1, 65, dtype=float).reshape(8, 8) + np.eye(8) * 50;"
        "print(np.__file__, round(float(np.linalg.det(a)), 3), float((a @ a).sum()),"
        " bool(np.allclose(np.linalg.inv(a) @ a, np.eye(8))))"
    )
    stripped = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    original = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert stripped.returncode == 0, stripped.stderr
    assert stripped.stdout.split()[0] == str(site / "numpy" / "__init__.py")
    assert stripped.stdout.split()[1:] == original.stdout.split()[1:]
    assert stripped.stdout.split()[-1] == "True"


def test_a_library_two_wheels_vendor_is_kept_once(tmp_path: Path) -> None:
    site = numpy_copy(tmp_path)
    (gfortran,) = (site / "numpy.libs").glob("libgfortran*")
    other = site / "scipy.libs"
    other.mkdir()
    shutil.copyfile(gfortran, other / gfortran.name)
    shutil.copyfile(gfortran, other / "libdifferent.so")
    with (other / "libdifferent.so").open("ab") as handle:
        handle.write(b"\0")  # one byte more: not the same library
    (other / "notes.txt").write_bytes(gfortran.read_bytes()[:4])
    count, saved = link_duplicates(str(site))
    assert (count, saved) == (1, gfortran.stat().st_size)
    link = other / gfortran.name
    assert link.is_symlink() and os.readlink(link) == f"../numpy.libs/{gfortran.name}"
    assert link.read_bytes() == gfortran.read_bytes()
    assert not (other / "libdifferent.so").is_symlink()
    assert link_duplicates(str(site)) == (0, 0)  # stable


def test_a_segment_across_the_symbol_table_leaves_the_library_alone(tmp_path: Path) -> None:
    import struct

    site = numpy_copy(tmp_path)
    (blas,) = (site / "numpy.libs").glob("libscipy_openblas*.so")
    data = bytearray(blas.read_bytes())
    assert strip(bytes(data)) is not None
    phoff, phentsize, phnum = (
        struct.unpack_from("<Q", data, 0x20)[0],
        *struct.unpack_from("<HH", data, 0x36),
    )
    # the first segment made to run to the file's end: it now covers the symbol table
    struct.pack_into("<Q", data, phoff + 32, len(data))
    assert phnum > 1 and phentsize == 56
    assert strip(bytes(data)) is None
