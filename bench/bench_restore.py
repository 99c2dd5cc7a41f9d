#!/usr/bin/env python3
"""What verifying every restored byte costs: cold restores, two mlbuild source trees side by side.

Each tree (``--tree LABEL=PATH``, e.g. the commit before verification and the one after) gets its
own workspace with the same outputs: one big file (``--big-mb``), a directory of ``--files``
files of ``--file-size-mb`` each, and, unless ``--no-example``, a copy of ``examples/iris``. After
one untimed run fills each cache, every repetition deletes the outputs and times ``mlbuild run``
restoring them (trees alternating, order flipped every other repetition; the page cache is warm
for both). Medians are printed as a Markdown table.

Then no-op runs are timed the same way, and one of each tree runs under ``strace -e openat``: the
files it opens, outside the Python installation, must be the same for both trees — verification
must not make a run whose outputs are intact read anything more.

Usage::

    git archive e07fadc mlbuild | tar -x -C /tmp/before     # the tree before
    python bench/bench_restore.py --tree before=/tmp/before --tree after=. --reps 7
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE = """\
schema_version: 1
name: restore-bench
steps:
  big:
    cmd: python -S gen.py big
    deps: [gen.py]
    outs: [big.bin]
  many:
    cmd: python -S gen.py many
    deps: [gen.py]
    outs: [many/]
"""
GEN = """\
import shutil, sys
if sys.argv[1] == "big":
    shutil.copyfile("../data/big.bin", "big.bin")
else:
    shutil.copytree("../data/many", "many")
"""
EXAMPLE_OUTS = ["data", "model"]


def mlbuild(tree: Path, cwd: Path, *args: str, strace: Path | None = None) -> tuple[float, float]:
    """Run mlbuild from ``tree`` in ``cwd``: (wall seconds, CPU seconds of user + system)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    env.pop("MLBUILD_CACHE_DIR", None)
    argv = [sys.executable, "-m", "mlbuild.cli.main", *args]
    if strace is not None:
        argv = ["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(strace), *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} in {cwd} failed:\n{done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu


def make_data(work: Path, big_mb: float, files: int, file_mb: float) -> None:
    data = work / "data"
    (data / "many").mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(data / "big.bin", "wb") as handle:
        for _ in range(int(big_mb)):
            handle.write(chunk)
    for i in range(files):
        (data / "many" / f"f{i:05d}.bin").write_bytes(os.urandom(int(file_mb * (1 << 20))))


def setup(work: Path, label: str, tree: Path, example: bool) -> dict[str, Path]:
    repos = {}
    ws = work / f"ws-{label}"
    ws.mkdir()
    (ws / "ml.yaml").write_text(RECIPE)
    (ws / "gen.py").write_text(GEN)
    mlbuild(tree, ws, "run", "-q")
    repos["outputs"] = ws
    if example:
        iris = work / f"iris-{label}"
        top = REPO / "examples" / "iris"

        def outputs(folder: str, names: list[str]) -> set[str]:
            made = {".mlbuild", "metrics.json", *EXAMPLE_OUTS} if Path(folder) == top else set()
            return {n for n in names if n == "__pycache__" or n in made}

        shutil.copytree(top, iris, ignore=outputs)
        mlbuild(tree, iris, "run", "-q")
        repos["example"] = iris
    return repos


CASES = {
    "one big file": ("outputs", ["big.bin"], ["big"]),
    "a directory of many files": ("outputs", ["many"], ["many"]),
    "examples/iris (3 steps)": ("example", EXAMPLE_OUTS, []),
}


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def opened(log: Path, ignore: list[str]) -> set[str]:
    """Files (not folders) a traced run opened; temporary files it wrote count as one name."""
    found = set()
    for line in log.read_text().splitlines():
        match = re.search(r'openat\(AT_FDCWD, "([^"]+)", ([A-Z_|]+)', line)
        if not match or "ENOENT" in line or "O_DIRECTORY" in match[2]:
            continue
        if any(match[1].startswith(p) for p in ignore):
            continue
        found.add(re.sub(r"/(\.tmp-[^/]+|\.[^/]+\.tmp)$", "/<temporary file>", match[1]))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--big-mb", type=float, default=1024)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--file-size-mb", type=float, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-example", action="store_true")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    trees = {
        label: Path(path).resolve() for label, _, path in (t.partition("=") for t in args.tree)
    }
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-restore-"))
    make_data(work, args.big_mb, args.files, args.file_size_mb)
    repos = {label: setup(work, label, tree, not args.no_example) for label, tree in trees.items()}
    cases = {k: v for k, v in CASES.items() if v[0] != "example" or not args.no_example}
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    labels = list(trees)
    for rep in range(args.reps):
        for label in labels if rep % 2 == 0 else labels[::-1]:
            for case, (repo, outs, steps) in cases.items():
                root = repos[label][repo]
                for out in outs:
                    remove(root / out)
                took = mlbuild(trees[label], root, "run", "-q", "-j", "1", *steps)
                times.setdefault((case, label), []).append(took)
    load = os.getloadavg()
    print(
        f"\n{args.big_mb:g} MiB file; {args.files} files × {args.file_size_mb:g} MiB; "
        f"medians of {args.reps}; load average after: {load[0]:.2f}\n"
    )
    for what, index in (("wall time", 0), ("CPU time (user + system)", 1)):
        print(f"| cold restore, {what} | {' | '.join(labels)} | change |")
        print(f"|---|{'---|' * len(labels)}---|")
        for case in cases:
            medians = [statistics.median(t[index] for t in times[(case, lb)]) for lb in labels]
            change = f"{(medians[-1] / medians[0] - 1) * 100:+.1f} %"
            print(f"| {case} | {' | '.join(f'{m:.3f} s' for m in medians)} | {change} |")
        print()
    for label, tree in trees.items():
        mlbuild(tree, repos[label]["outputs"], "run", "-q")  # settle the state table (racy-git)
    time.sleep(1.2)
    noop: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
    for rep in range(args.reps * 3):
        for label in labels if rep % 2 == 0 else labels[::-1]:
            noop[label].append(mlbuild(trees[label], repos[label]["outputs"], "run", "-q"))
    print(f"| no-op `mlbuild run` (medians of {args.reps * 3}) | {' | '.join(labels)} | change |")
    print(f"|---|{'---|' * len(labels)}---|")
    for what, index in (("wall", 0), ("CPU", 1)):
        medians = [statistics.median(t[index] for t in noop[label]) for label in labels]
        change = f"{(medians[-1] / medians[0] - 1) * 100:+.1f} %"
        print(f"| {what} | {' | '.join(f'{m:.3f} s' for m in medians)} | {change} |")
    ignore = [sys.prefix, sys.base_prefix, "/usr/", "/etc/", "/proc/", "/dev/", "/sys/"]
    files: dict[str, set[str]] = {}
    for label, tree in trees.items():
        root = repos[label]["outputs"]
        log = work / f"strace-{label}.txt"
        mlbuild(tree, root, "run", "-q", strace=log)
        files[label] = {
            p.replace(str(root), "WS").replace(str(tree), "TREE")
            for p in opened(log, ignore)
            if not p.startswith(str(tree))
        }
    print("\nno-op `mlbuild run`: files opened outside Python and the source tree")
    for label in labels:
        print(f"- {label}: {sorted(files[label])}")
    extra = files[labels[-1]] - files[labels[0]]
    print(f"- opened by {labels[-1]} but not by {labels[0]}: {sorted(extra) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
