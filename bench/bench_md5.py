"""md5 of many files: the C extension (mlbuild/data/_md5x.c, 24 files at once per thread, three
8-lane groups of AVX2 or AVX-512VL code interleaved) against hashlib, in seconds per GiB (issue 15:
DVC's md5 on a dataset's first run).

    python bench/bench_md5.py [--scale 1] [--reps 3]

Cases: many small files, many 1 MiB files, and a few big ones (fewer files than lanes: the lanes
stay mostly idle). Files are written once to a temp dir and read once before timing, so every
mode reads them from the page cache. CPU is the process's (user + system, all threads): the
honest figure on a loaded machine; wall is printed beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from mlbuild.data import _md5x

GIB = 1 << 30


def hashlib_md5(paths: Sequence[str]) -> list[str | int]:
    """What md5.py does without the extension: hashlib, 1 MiB reads, one file after another."""
    found: list[str | int] = []
    for path in paths:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        found.append(digest.hexdigest())
    return found


MODES: dict[str, Callable[[Sequence[str]], list[str | int]]] = {
    "hashlib, 1 thread": hashlib_md5,
    "md5x scalar, 1 thread": lambda p: _md5x.md5_files(p, simd="off"),
    "md5x AVX2, 1 thread": lambda p: _md5x.md5_files(p, simd="avx2"),
    "md5x AVX-512VL, 1 thread": lambda p: _md5x.md5_files(p, simd="avx512"),
    "md5x best, 2 threads": lambda p: _md5x.md5_files(p, threads=2),
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make(root: Path, name: str, count: int, size: int) -> list[str]:
    folder = root / name
    folder.mkdir()
    block = os.urandom(size)
    paths = []
    for i in range(count):
        path = folder / f"{i:06d}"
        # each file different (a counter in front), so no two digests are equal by chance
        path.write_bytes(i.to_bytes(8, "little") + block[8:])
        paths.append(str(path))
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every case's bytes")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    cases = {
        "16,384 x 4 KiB": (int(16384 * args.scale), 4 << 10),
        "256 x 1 MiB": (int(256 * args.scale), 1 << 20),
        "2 x 128 MiB": (2, int((128 << 20) * args.scale)),
        "5 x 64 MiB": (5, int((64 << 20) * args.scale)),
    }
    print(f"vector code: {_md5x.simd_levels()}; medians of {args.reps}, seconds per GiB")
    print(f"| case | {' | '.join(f'{m}: CPU / wall' for m in MODES)} |")
    print(f"| --- |{' --- |' * len(MODES)}")
    with tempfile.TemporaryDirectory(prefix="bench-md5-") as tmp:
        for i, (case, (count, size)) in enumerate(cases.items()):
            paths = make(Path(tmp), f"case{i}", count, size)
            expected = hashlib_md5(paths)  # also reads every file into the page cache
            gib = count * size / GIB
            cells = []
            for mode, run in MODES.items():
                cpus, walls = [], []
                for _ in range(args.reps):
                    c0, w0 = cpu(), time.perf_counter()
                    got = run(paths)
                    walls.append((time.perf_counter() - w0) / gib)
                    cpus.append((cpu() - c0) / gib)
                    assert got == expected, mode
                cells.append(f"{statistics.median(cpus):.2f} / {statistics.median(walls):.2f}")
            print(f"| {case} | {' | '.join(cells)} |", flush=True)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
