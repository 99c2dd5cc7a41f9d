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
- no-op: `mlbuild run` (dataset, and plain dep) / `dvc status`.

Wall and CPU seconds (user + system of the command) are printed side by side; with
``--template DIR`` the template repository is built once and reused (100,000 files take minutes).
"""

from __future__ import annotations

import argparse
import os
import resource
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


def reuse_template(args: argparse.Namespace) -> Path | None:
    """``--template`` when it holds a complete template of ``--files`` files (its marker says)."""
    if args.template is None or not (args.template / _DONE).is_file():
        return None
    if (args.template / _DONE).read_text() != f"{args.files} {args.file_size_kb}":
        raise SystemExit(f"{args.template} holds another template; remove it or pick another")
    return Path(args.template)


_DONE = ".bench-template-done"


def make_template(repo: Path, dvc: str, files: int, size: int) -> Path:
    if repo.exists():
        shutil.rmtree(repo)  # a build that did not finish
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
    (repo / _DONE).write_text(f"{files} {size // 1024}")
    return repo


def fresh(template: Path, dest: Path, dataset: bool) -> Path:
    # hard links: the copy costs no data writes, and DVC's and mlbuild's caches start empty
    shutil.copytree(template, dest, copy_function=os.link, symlinks=True)
    (dest / "ml.yaml").write_text(ml_yaml(dataset))
    # a hard link sets each file's ctime to now: wait out mlbuild's racy window (1 s), or a
    # first run made right after its copy may remember nothing, and its no-op re-reads every
    # file (the baseline's copies were made just before their first run, this checkout's not)
    time.sleep(1.1)
    return dest


CPU: dict[str, list[float]] = {}  # CPU seconds (user + system) of each timed command, by case


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str], case: str = "") -> float:
    """Wall seconds of ``argv``; its CPU seconds go to ``CPU[case]`` (the honest figure on a
    loaded machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1) or "Traceback" in done.stderr:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    CPU.setdefault(case, []).append(cpu)
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
    """The cases for mlbuild at ``--baseline``, in its own copies beside ``dest``."""
    found = []
    run = [args.mlbuild, "run", "-q"]
    for dataset, what in ((True, "dataset"), (False, "plain dep")):
        repo = fresh(template, dest.with_name(f"{dest.name}-{what.replace(' ', '-')}"), dataset)
        label = f"mlbuild {args.baseline} run ({what})"
        for case in ("first run", "no-op", "one file touched"):
            if case == "one file touched":
                touch_one(repo, args.files)
            found.append((f"{case}: {label}", timed(run, repo, env, f"{case}: {label}")))
        shutil.rmtree(repo)
    return found


def build_extensions(src: Path) -> None:
    """The C extensions of the exported revision ``src``, built in place: without them its
    mlbuild would hash DVC datasets with hashlib, not with the code it ships."""
    if (src / "setup.py").is_file():
        argv = [sys.executable, "setup.py", "-q", "build_ext", "--inplace"]
        subprocess.run(argv, cwd=src, check=True, capture_output=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc", default=str(Path(sys.executable).parent / "dvc"))
    parser.add_argument("--mlbuild", default=str(Path(sys.executable).parent / "mlbuild"))
    parser.add_argument("--files", type=int, default=1024)
    parser.add_argument("--file-size-kb", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--baseline", help="a git revision of mlbuild to time beside this one")
    parser.add_argument(
        "--template",
        type=Path,
        help="keep the template repository here and reuse it when it exists (building 100,000 "
        "files and `dvc add`ing them takes minutes)",
    )
    parser.add_argument("--build-only", action="store_true", help="build --template and stop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
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
        template = reuse_template(args) or make_template(
            args.template or root / "template", args.dvc, args.files, args.file_size_kb * 1024
        )
        print(f"template: {args.files} files, {time.perf_counter() - started:.1f} s", flush=True)
        if args.build_only:
            return
        if args.baseline:
            from baseline import export

            base_src = export(args.baseline, root / "baseline-src")
            build_extensions(base_src)
            base_env = {**env, "PYTHONPATH": str(base_src)}
        for rep in range(args.reps):
            if base_env is not None:
                for key, value in baseline_cases(args, template, root / f"base{rep}", base_env):
                    add(key, value)
            ds = fresh(template, root / f"ds{rep}", dataset=True)
            plain = fresh(template, root / f"plain{rep}", dataset=False)
            dvcrepo = fresh(template, root / f"dvc{rep}", dataset=False)
            ml, dvc = [args.mlbuild, "run", "-q"], [args.dvc]

            def case(key: str, argv: list[str], repo: Path) -> None:
                add(key, timed(argv, repo, env, key))

            case("first run: mlbuild, data: dataset", ml, ds)
            case("first run: mlbuild, plain dep", ml, plain)
            case("first run: dvc repro", [*dvc, "repro", "-q"], dvcrepo)
            case("no-op: mlbuild run (dataset)", ml, ds)
            case("no-op: mlbuild run (plain dep)", ml, plain)
            case("no-op: dvc status", [*dvc, "status", "-q"], dvcrepo)
            for repo in (ds, plain, dvcrepo):
                touch_one(repo, args.files)
            case("one file touched: mlbuild run (dataset)", ml, ds)
            case("one file touched: mlbuild run (plain dep)", ml, plain)
            case("one file touched: dvc status", [*dvc, "status", "-q"], dvcrepo)
            touch_one(ds, args.files)
            imported.append(imports_dvc(ds, env))
            for repo in (ds, plain, dvcrepo):
                shutil.rmtree(repo)
            print(f"rep {rep + 1}/{args.reps} done", flush=True)

    report(args, samples, imported)


def report(args: argparse.Namespace, samples: dict[str, list[float]], imported: list[bool]) -> None:
    print(f"\n{args.files} files x {args.file_size_kb} KiB, medians of {args.reps} (s):")
    print(f"  {'case':45s} {'wall':>8s} {'CPU':>8s}")
    for key, values in samples.items():
        cpu = statistics.median(CPU[key]) if CPU.get(key) else float("nan")
        print(f"  {key:45s} {statistics.median(values):8.3f} {cpu:8.3f}")
    print(f"  load average at the end: {os.getloadavg()}")
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(
        "  ratio first run dataset / plain dep       "
        f"{med['first run: mlbuild, data: dataset'] / med['first run: mlbuild, plain dep']:8.2f}"
    )
    first_cpu = {k: statistics.median(CPU[k]) for k in CPU if k.startswith("first run: mlbuild")}
    for dataset, plain in (
        ("first run: mlbuild, data: dataset", "first run: mlbuild, plain dep"),
        (
            f"first run: mlbuild {args.baseline} run (dataset)",
            f"first run: mlbuild {args.baseline} run (plain dep)",
        ),
    ):
        if dataset in first_cpu and plain in first_cpu:
            print(f"  CPU ratio {dataset} / plain dep: {first_cpu[dataset] / first_cpu[plain]:.2f}")
    for dep in ("dataset", "plain dep"):
        ratio = med["no-op: dvc status"] / med[f"no-op: mlbuild run ({dep})"]
        cpu = statistics.median(CPU["no-op: dvc status"]) / statistics.median(
            CPU[f"no-op: mlbuild run ({dep})"]
        )
        print(f"  ratio no-op dvc status / mlbuild run ({dep}): wall {ratio:.2f}, CPU {cpu:.2f}")
    touched = med["one file touched: dvc status"] / med["one file touched: mlbuild run (dataset)"]
    print(f"  ratio touched dvc status / mlbuild run    {touched:8.2f}")
    print(f"  touched mlbuild run imported DVC          {any(imported)}")


if __name__ == "__main__":
    main()
