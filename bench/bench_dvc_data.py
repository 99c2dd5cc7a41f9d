"""DVC-tracked data against plain files, and against DVC itself (issue 15, items 2 and 3).

    python bench/bench_dvc_data.py --reps 5
    python bench/bench_dvc_data.py --reps 5 --files 100000 --file-size-kb 1   # a 100,000-file dir
    python bench/bench_dvc_data.py --baseline main ...   # and mlbuild at revision main, alike

With ``--baseline REV``, mlbuild at that revision of this repository runs the dataset cases too,
in its own copy, beside this checkout's.

One git + DVC repository holds `data/raw` (FILES files, `dvc add`ed) and a one-step pipeline for
each tool (`dvc.yaml` and `ml.yaml`) whose step reads `data/raw` and writes a small file. Cases,
each the median of REPS runs in fresh copies, the tools alternating:

- first run: `mlbuild run` with `data/raw` as a `data:` dataset against the same data as a plain
  dep (both hash every byte once: DVC's md5 or mlbuild's BLAKE3), and `dvc repro`;
- one file touched (its mtime changed, its bytes not): `mlbuild run` / `dvc repro` / `dvc status`,
  and whether the mlbuild run imported DVC;
- no-op: `mlbuild run` / `dvc status`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEP = "ls data/raw > {out}"


def ml_yaml(dataset: bool) -> str:
    dep = "data:raw" if dataset else "data/raw"
    data = "data:\n  raw: {path: data/raw}\n" if dataset else ""
    return (
        f"schema_version: 1\nname: bench\n{data}steps:\n"
        f"  count:\n    cmd: {STEP.format(out='mlout.txt')}\n"
        f"    deps: [{dep}]\n    outs: [mlout.txt]\n"
    )


DVC_YAML = (
    "stages:\n  count:\n"
    f"    cmd: {STEP.format(out='dvcout.txt')}\n"
    "    deps: [data/raw]\n    outs: [dvcout.txt]\n"
)


def sh(argv: Sequence[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def make_template(root: Path, dvc: str, files: int, size: int) -> Path:
    repo = root / "template"
    raw = repo / "data/raw"
    raw.mkdir(parents=True)
    for i in range(files):
        folder = raw / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"{i:06d}.bin").write_bytes(os.urandom(size))
    sh(["git", "init", "-q"], repo)
    sh([dvc, "init", "-q"], repo)
    sh([dvc, "add", "-q", "data/raw"], repo)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    sh(["git", "add", "-A"], repo)
    sh(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "data"], repo)
    return repo


def fresh(template: Path, dest: Path, dataset: bool) -> Path:
    # hard links: the copy costs no data writes, and DVC's and mlbuild's caches start empty
    shutil.copytree(template, dest, copy_function=os.link, symlinks=True)
    (dest / "ml.yaml").write_text(ml_yaml(dataset))
    return dest


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stderr[-2000:]}")
    return elapsed


def touch_one(repo: Path, files: int) -> None:
    i = files // 2
    path = repo / "data/raw" / f"{i // 1000:03d}" / f"{i:06d}.bin"
    later = time.time_ns() + 10**9
    os.utime(path, ns=(later, later))


def imports_dvc(repo: Path, env: dict[str, str]) -> bool:
    probe = (
        "import sys\nfrom mlbuild.cli.main import main\nmain(['run', '-q'])\n"
        "print('dvc' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def baseline_cases(
    args: argparse.Namespace, template: Path, dest: Path, env: dict[str, str]
) -> list[tuple[str, float]]:
    """The dataset cases for mlbuild at ``--baseline``, in its own copy ``dest``."""
    repo = fresh(template, dest, dataset=True)
    run = [args.mlbuild, "run", "-q"]
    label = f"mlbuild {args.baseline} run (dataset)"
    found = [
        (f"first run: {label}", timed(run, repo, env)),
        (f"no-op: {label}", timed(run, repo, env)),
    ]
    touch_one(repo, args.files)
    found.append((f"one file touched: {label}", timed(run, repo, env)))
    shutil.rmtree(repo)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", default=str(Path(sys.executable).parent / "dvc"))
    parser.add_argument("--mlbuild", default=str(Path(sys.executable).parent / "mlbuild"))
    parser.add_argument("--files", type=int, default=1024)
    parser.add_argument("--file-size-kb", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline", help="a git revision of mlbuild to time beside this one")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(REPO), "DVC_NO_ANALYTICS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both tools run from cached bytecode, as installed
    base_env: dict[str, str] | None = None
    samples: dict[str, list[float]] = {}
    imported: list[bool] = []

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory(prefix="bench-dvc-data-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        template = make_template(root, args.dvc, args.files, args.file_size_kb * 1024)
        print(f"template: {args.files} files, {time.perf_counter() - started:.1f} s", flush=True)
        if args.baseline:
            from baseline import export

            base_env = {**env, "PYTHONPATH": str(export(args.baseline, root / "baseline-src"))}
        for rep in range(args.reps):
            if base_env is not None:
                for key, value in baseline_cases(args, template, root / f"base{rep}", base_env):
                    add(key, value)
            ds = fresh(template, root / f"ds{rep}", dataset=True)
            plain = fresh(template, root / f"plain{rep}", dataset=False)
            dvcrepo = fresh(template, root / f"dvc{rep}", dataset=False)
            add("first run: mlbuild, data: dataset", timed([args.mlbuild, "run", "-q"], ds, env))
            add("first run: mlbuild, plain dep", timed([args.mlbuild, "run", "-q"], plain, env))
            add("first run: dvc repro", timed([args.dvc, "repro", "-q"], dvcrepo, env))
            add("no-op: mlbuild run (dataset)", timed([args.mlbuild, "run", "-q"], ds, env))
            add("no-op: dvc status", timed([args.dvc, "status", "-q"], dvcrepo, env))
            for repo in (ds, plain, dvcrepo):
                touch_one(repo, args.files)
            add(
                "one file touched: mlbuild run (dataset)",
                timed([args.mlbuild, "run", "-q"], ds, env),
            )
            add(
                "one file touched: mlbuild run (plain dep)",
                timed([args.mlbuild, "run", "-q"], plain, env),
            )
            add("one file touched: dvc status", timed([args.dvc, "status", "-q"], dvcrepo, env))
            touch_one(ds, args.files)
            imported.append(imports_dvc(ds, env))
            for repo in (ds, plain, dvcrepo):
                shutil.rmtree(repo)
            print(f"rep {rep + 1}/{args.reps} done", flush=True)

    print(f"\n{args.files} files x {args.file_size_kb} KiB, medians of {args.reps} (s):")
    for key, values in samples.items():
        print(f"  {key:45s} {statistics.median(values):8.3f}")
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(
        "  ratio first run dataset / plain dep       "
        f"{med['first run: mlbuild, data: dataset'] / med['first run: mlbuild, plain dep']:8.2f}"
    )
    print(
        "  ratio no-op dvc status / mlbuild run      "
        f"{med['no-op: dvc status'] / med['no-op: mlbuild run (dataset)']:8.2f}"
    )
    touched = med["one file touched: dvc status"] / med["one file touched: mlbuild run (dataset)"]
    print(f"  ratio touched dvc status / mlbuild run    {touched:8.2f}")
    print(f"  touched mlbuild run imported DVC          {any(imported)}")


if __name__ == "__main__":
    main()
