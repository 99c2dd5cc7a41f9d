"""The md5 of many files at once (mlbuild/data/_md5x.c): equal to hashlib's for every file,
whatever the sizes, the lanes the files share and the threads; what is not a regular file is
refused unread."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlbuild.data import md5
from mlbuild.data.md5 import Unsupported, dvc_hash
from mlbuild.data.snapshot import NotData
from tests.conftest import CHILD_ENV

if os.environ.get("MLBUILD_REQUIRE_MD5X") == "1":  # scripts/test: the extension must be built
    from mlbuild.data import _md5x as md5x
else:
    md5x = pytest.importorskip("mlbuild.data._md5x")

# every kernel this CPU runs (AVX-512VL, AVX2, scalar code), with one thread and several
MODES = [
    pytest.param({"simd": simd, "threads": threads}, id=f"{simd}-{threads}")
    for simd in [*md5x.simd_levels(), "off"]
    for threads in (1, 3)
]
# the C code reads 64 KiB a file at a time
BUFFER = 64 * 1024


def files(root: Path, sizes: list[int], seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / f"f{i:04d}" for i in range(len(sizes))]
    for path, size in zip(paths, sizes, strict=True):
        path.write_bytes(rng.randbytes(size))
    return paths


def hashlib_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.mark.parametrize("mode", MODES)
def test_each_size_around_a_block_or_a_buffer_boundary_hashes_as_hashlib(
    tmp_path: Path, mode: dict[str, int]
) -> None:
    # 55 is the last size whose padding fits its own block, 56 the first that needs another
    sizes = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]
    sizes += [BUFFER - 65, BUFFER - 64, BUFFER - 1, BUFFER, BUFFER + 1, 3 * BUFFER + 63]
    paths = files(tmp_path, sizes)
    assert md5x.md5_files(paths, **mode) == [hashlib_md5(p) for p in paths]


@pytest.mark.parametrize("mode", MODES)
def test_files_of_very_different_sizes_share_the_lanes_of_one_batch(
    tmp_path: Path, mode: dict[str, int]
) -> None:
    # a big file keeps its lane while tiny ones come and go in the other seven
    sizes = [5 << 20, 0, 1, 3, 70_000, 64, 2 << 20, 17, 0, 1 << 20, 999_999, 5, 64 * 3 + 1, 12]
    paths = files(tmp_path, sizes, seed=1)
    assert md5x.md5_files(paths, **mode) == [hashlib_md5(p) for p in paths]


@pytest.mark.parametrize("mode", MODES)
def test_the_lanes_of_three_groups_of_eight_hash_as_hashlib(
    tmp_path: Path, mode: dict[str, int]
) -> None:
    # a thread hashes 24 files at once, as three groups of eight interleaved: every lane of the
    # three busy with a file of its own size, then files ending group by group while the busy
    # lanes, gathered from all three, are hashed by the code of three groups, then two, then one
    # (lanes 1, 6, 9, 12, 15, 20 and 23 last, ending one by one)
    sizes = [BUFFER * (1 + j % 3) + 64 * j + j for j in range(24)]
    for j in range(0, 24, 4):
        sizes[j] = 5 * BUFFER + 11 * j
    for n, j in enumerate((1, 6, 9, 12, 15, 20, 23)):
        sizes[j] = (8 + n) * BUFFER + 37 * j
    sizes += [3 * BUFFER + 5, 64, 0, 2 * BUFFER - 1]  # taken by the lanes whose files end first
    paths = files(tmp_path, sizes, seed=5)
    assert md5x.md5_files(paths, **mode) == [hashlib_md5(p) for p in paths]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("mode", MODES)
def test_more_files_than_lanes_of_random_sizes_hash_as_hashlib(
    tmp_path: Path, mode: dict[str, int], seed: int
) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([rng.randrange(200), rng.randrange(300_000)]) for _ in range(43)]
    paths = files(tmp_path, sizes, seed=seed)
    assert md5x.md5_files(paths, **mode) == [hashlib_md5(p) for p in paths]


def test_an_unknown_or_absent_vector_code_is_refused() -> None:
    with pytest.raises(ValueError, match="simd='neon' is not vector code this CPU runs"):
        md5x.md5_files([], simd="neon")


def test_an_empty_batch_has_no_digest() -> None:
    assert md5x.md5_files([]) == []
    assert md5x.md5_files([], threads=4) == []


def test_paths_may_be_str_bytes_or_path_objects(tmp_path: Path) -> None:
    (path,) = files(tmp_path, [100])
    assert len(set(md5x.md5_files([path, str(path), os.fsencode(path)]))) == 1


@pytest.mark.timeout(20, method="thread")  # a hung open() ignores signals
@pytest.mark.parametrize("mode", MODES)
def test_a_fifo_is_refused_unread_and_does_not_hang(tmp_path: Path, mode: dict[str, int]) -> None:
    # opening a FIFO for reading waits for a writer; nobody writes to this one
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (regular,) = files(tmp_path / "data", [1000])
    assert md5x.md5_files([fifo, regular], **mode) == [-1, hashlib_md5(regular)]


@pytest.mark.timeout(20, method="thread")  # a hung open() ignores signals
def test_dvc_hash_refuses_a_fifo_or_a_device_and_never_leaves_it_to_dvc(tmp_path: Path) -> None:
    # Unsupported would ask DVC, which opens the FIFO and waits for ever
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotData, match="fifo is neither a file nor a directory"):
        dvc_hash(fifo, [], {})
    with pytest.raises(NotData, match="/dev/null is neither a file nor a directory"):
        dvc_hash(Path("/dev/null"), [], {})


@pytest.mark.timeout(20, method="thread")  # a hung open() ignores signals
@pytest.mark.parametrize("link_name", ["a-link", "z-link"])
def test_a_fifo_beside_a_symlink_is_refused_whichever_is_listed_first(
    tmp_path: Path, link_name: str
) -> None:
    # a symlink alone is left to DVC (Unsupported); the FIFO must be seen all the same
    (target,) = files(tmp_path / "data", [100])
    (tmp_path / "data" / link_name).symlink_to(target.name)
    os.mkfifo(tmp_path / "data/m-fifo")
    with pytest.raises(NotData, match="m-fifo is a FIFO"):
        dvc_hash(tmp_path / "data", [], {})


def test_a_symlink_to_a_device_is_refused_and_a_plain_symlink_left_to_dvc(tmp_path: Path) -> None:
    (target,) = files(tmp_path / "data", [100])
    (tmp_path / "data/link").symlink_to(target.name)
    with pytest.raises(Unsupported, match="link is a symlink"):
        dvc_hash(tmp_path / "data", [], {})
    (tmp_path / "data/null").symlink_to("/dev/null")
    with pytest.raises(NotData, match="null is a symlink to a character device"):
        dvc_hash(tmp_path / "data", [], {})


def test_a_symlink_is_hashed_as_the_file_it_points_to(tmp_path: Path) -> None:
    (target,) = files(tmp_path, [5000])
    link = tmp_path / "link"
    link.symlink_to(target)
    assert md5x.md5_files([link]) == [hashlib_md5(target)]
    # a dataset that is a symlink is still left to DVC (md5.dvc_hash checks before hashing)
    with pytest.raises(Unsupported, match="is a symlink"):
        dvc_hash(link, [], {})


def test_a_missing_file_or_a_directory_is_reported_beside_the_others(tmp_path: Path) -> None:
    (regular,) = files(tmp_path / "data", [70_000])
    got = md5x.md5_files([tmp_path / "absent", regular, tmp_path])
    assert got == [errno.ENOENT, hashlib_md5(regular), -1]


def test_a_file_gone_after_the_walk_raises_as_open_would(tmp_path: Path) -> None:
    paths = files(tmp_path, [10, 20, 30])
    todo = [[p.name, 0, 0, 0] for p in paths]
    paths[1].unlink()
    with pytest.raises(FileNotFoundError) as raised:
        md5._hash_all(tmp_path, todo)
    assert raised.value.filename == str(paths[1])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_reported_with_its_errno(tmp_path: Path) -> None:
    (path,) = files(tmp_path, [10])
    path.chmod(0)
    assert md5x.md5_files([path]) == [errno.EACCES]
    with pytest.raises(PermissionError):
        md5._hash_all(tmp_path, [[path.name, 0, 0, 0]])


def test_a_name_that_is_not_utf8_is_hashed_by_its_bytes(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9"
    with open(name, "wb") as f:
        f.write(b"bytes of a latin-1 name")
    expected = hashlib.md5(b"bytes of a latin-1 name", usedforsecurity=False).hexdigest()
    assert md5x.md5_files([name, os.fsdecode(name)]) == [expected, expected]
    assert dvc_hash(tmp_path, [], {}).md5 == {os.fsdecode(b"caf\xe9"): expected}  # type: ignore[union-attr]


def prefix_digests(data: bytes, start: int, step: int = 4096) -> set[str]:
    """The md5 of every prefix of ``data`` from ``start`` bytes on, in ``step``s, and of all."""
    digest = hashlib.md5(data[:start], usedforsecurity=False)
    found = {digest.hexdigest()}
    for offset in range(start, len(data), step):
        digest.update(data[offset : offset + step])
        found.add(digest.hexdigest())
    return found


@pytest.mark.parametrize("mode", MODES)
def test_a_file_growing_while_hashed_gives_the_md5_of_what_was_read(
    tmp_path: Path, mode: dict[str, int]
) -> None:
    # as hashlib reading to the end would: the md5 of a prefix, from the size it had on
    paths = files(tmp_path, [8 << 20, 3 << 20, 1000, 50_000])
    growing = paths[0]
    extra = random.Random(7).randbytes(64 * BUFFER)

    def append() -> None:
        with open(growing, "ab") as f:
            for offset in range(0, len(extra), BUFFER):
                f.write(extra[offset : offset + BUFFER])
                f.flush()

    writer = threading.Thread(target=append)
    writer.start()
    got = md5x.md5_files(paths, **mode)
    writer.join()
    assert got[0] in prefix_digests(growing.read_bytes(), 8 << 20)
    assert got[1:] == [hashlib_md5(p) for p in paths[1:]]


@pytest.mark.parametrize("mode", MODES)
def test_a_file_shrinking_while_hashed_gives_the_md5_of_what_was_read(
    tmp_path: Path, mode: dict[str, int]
) -> None:
    paths = files(tmp_path, [12 << 20, 3 << 20, 1000])
    original = paths[0].read_bytes()
    writer = threading.Thread(target=os.truncate, args=(paths[0], 1 << 20))
    writer.start()
    got = md5x.md5_files(paths, **mode)
    writer.join()
    assert got[0] in prefix_digests(original, 1 << 20)
    assert got[1:] == [hashlib_md5(p) for p in paths[1:]]


def test_a_dataset_over_many_files_has_hashlibs_md5_for_each(tmp_path: Path) -> None:
    # above md5._PARALLEL_BYTES, so the files are spread over threads
    rng = random.Random(3)
    paths = files(tmp_path / "data", [rng.randrange(1 << 20) for _ in range(60)], seed=3)
    hashed = dvc_hash(tmp_path / "data", [], {})
    assert hashed is not None
    assert hashed.md5 == {p.name: hashlib_md5(p) for p in paths}


# a child process in which the extension cannot be imported (None in sys.modules makes the import
# raise ImportError), as in an install without a C compiler
WITHOUT_EXTENSION = """\
import sys
sys.modules["mlbuild.data._md5x"] = None
from pathlib import Path
from mlbuild.data.md5 import dvc_hash
from mlbuild.data.snapshot import NotData
try:
    dvc_hash(Path(sys.argv[1]) / "fifo", [], {})
except NotData as exc:
    print("refused:", exc)
print(dvc_hash(Path(sys.argv[1]) / "data", [], {}).md5)
"""


@pytest.mark.timeout(60)
def test_without_the_extension_hashlib_gives_the_same_digests(tmp_path: Path) -> None:
    paths = files(tmp_path / "data", [0, 1, 100_000, 9 << 20, 9 << 20])
    os.mkfifo(tmp_path / "fifo")
    child = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTENSION, str(tmp_path)],
        env={**os.environ, **CHILD_ENV, "MLBUILD_REQUIRE_MD5X": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    refused, digests = child.stdout.splitlines()
    assert refused == f"refused: {tmp_path}/fifo is neither a file nor a directory"
    assert digests == str({p.name: hashlib_md5(p) for p in paths})


def test_a_missing_extension_fails_loudly_when_the_tests_require_it(tmp_path: Path) -> None:
    files(tmp_path / "data", [10])
    child = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTENSION, str(tmp_path)],
        env={**os.environ, **CHILD_ENV, "MLBUILD_REQUIRE_MD5X": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 1
    assert (
        "ImportError: MLBUILD_REQUIRE_MD5X=1 but the C extension mlbuild.data._md5x is not "
        "built: install with a C compiler (`pip install -e .`) or build it in place with "
        "`python setup.py build_ext --inplace`"
    ) in child.stderr
