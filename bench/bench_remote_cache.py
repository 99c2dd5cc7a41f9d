"""The remote cache (issue 14, item 1): a fresh clone restoring from a warm remote against running
the steps, and what a remote lookup that misses costs, against a real S3 API (moto, local).

    python bench/bench_remote_cache.py --reps 5

- warm remote: ``examples/iris`` runs once in a copy with a cache of its own and uploads to
  ``s3://BUCKET/cache``. Then, REPS times, in turn, in a fresh copy with a fresh
  ``MLBUILD_CACHE_DIR``: ``mlbuild run --no-remote`` (every step runs), ``mlbuild run`` (every
  step is restored from the remote, read by mlbuild's signed requests, ``cache/remote/s3.py``) and
  the same with ``MLBUILD_S3_READS=s3fs`` (read through s3fs, as before). Target: restoring at
  least 5x faster than running. Two floors beside them: the fresh clone restored from a copy of
  the warm *local* cache (``run --no-remote``: what the remote adds is the difference) and its
  ``plan --no-remote`` (start-up and compiling the recipe, which every fresh clone pays).
  Wall and CPU seconds (user + system of mlbuild and the steps it runs, not moto's).
- misses: a recipe of N independent trivial steps, an empty bucket, a fresh local cache; ``mlbuild
  plan`` with the remote (both readers) and with ``--no-remote``, for N=1 and N=STEPS. The cost of
  a miss per step is the difference's growth from 1 to N steps over N-1 (so connecting, paid once
  per command, is reported apart). Target: under 50 ms per step.

The moto server is started here, as the tests start it (tests/s3.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.s3 import S3Server, s3_server  # noqa: E402

EXAMPLE = REPO / "examples" / "iris"
OUTPUTS = {"data", "model", "metrics.json", ".mlbuild", "__pycache__"}
# the example's steps run `python`: this interpreter, which has scikit-learn
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: mlbuild and its steps
    return used.ru_utime + used.ru_stime


LAST_CPU: list[float] = [0.0]  # the CPU seconds of the last mlbuild() call


def mlbuild(
    cwd: Path, env: dict[str, str], *args: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    # an installed mlbuild runs from compiled bytecode (pip compiles it): a caller's
    # PYTHONDONTWRITEBYTECODE would make every call compile ~100 modules again (~0.7 s)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cpu = _cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlbuild.cli.main", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPO), "PATH": PATH, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    LAST_CPU[0] = _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"mlbuild {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return elapsed, done


def copy_example(where: Path) -> Path:
    def outputs(folder: str, names: list[str]) -> set[str]:
        at_top = Path(folder) == EXAMPLE  # conf/model/ is config, not the model output
        return {n for n in names if n == "__pycache__" or (at_top and n in OUTPUTS)}

    return Path(shutil.copytree(EXAMPLE, where, ignore=outputs))


def statuses(done: subprocess.CompletedProcess[str]) -> list[str]:
    return sorted({s["status"] for s in json.loads(done.stdout)["steps"]})


def warm_remote(root: Path, s3: S3Server, reps: int) -> dict[str, tuple[float, float]]:
    """Per mode, the medians of (wall, CPU) seconds."""
    bucket = s3.bucket()
    env = {**s3.env, "MLBUILD_REMOTE_CACHE": f"s3://{bucket}/cache"}
    seed = copy_example(root / "seed")
    seed_cache = root / "seed-cache"
    mlbuild(seed, {**env, "MLBUILD_CACHE_DIR": str(seed_cache)}, "run", "-q")
    modes = ("run", "restore", "restore-s3fs", "restore-local", "compile")
    times: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for rep in range(reps):
        for mode, samples in times.items():
            clone = copy_example(root / f"{mode}-{rep}")
            cache = root / f"{mode}-{rep}-cache"
            if mode == "restore-local":
                shutil.copytree(seed_cache, cache, symlinks=True)
            local = {**env, "MLBUILD_CACHE_DIR": str(cache)}
            if mode == "restore-s3fs":
                local["MLBUILD_S3_READS"] = "s3fs"
            if mode == "compile":
                elapsed, done = mlbuild(clone, local, "plan", "--no-remote")
                samples.append((elapsed, LAST_CPU[0]))
                continue
            flags = ["--no-remote"] if mode in ("run", "restore-local") else []
            elapsed, done = mlbuild(clone, local, "run", "--json", *flags)
            expected = ["ran"] if mode == "run" else ["restored"]
            if statuses(done) != expected:
                raise SystemExit(f"{mode}: expected {expected}, got {statuses(done)}")
            samples.append((elapsed, LAST_CPU[0]))
    return {
        mode: (statistics.median(w for w, _ in samples), statistics.median(c for _, c in samples))
        for mode, samples in times.items()
    }


def trivial_recipe(steps: int) -> str:
    body = "".join(
        f"  s{i}:\n    cmd: echo {i} > out{i}.txt\n    outs: [out{i}.txt]\n" for i in range(steps)
    )
    return f"schema_version: 1\nname: misses\nsteps:\n{body}"


def misses(root: Path, s3: S3Server, steps: int, reps: int) -> dict[str, float]:
    found: dict[str, float] = {}
    for n in (1, steps):
        ws = root / f"misses-{n}"
        ws.mkdir()
        (ws / "ml.yaml").write_text(trivial_recipe(n))
        env = {**s3.env, "MLBUILD_REMOTE_CACHE": f"s3://{s3.bucket()}/cache"}
        env["MLBUILD_CACHE_DIR"] = str(root / f"misses-{n}-cache")
        mlbuild(ws, env, "plan", "--no-remote")  # compile the graph once: both modes reuse it
        local: list[float] = []
        remote: list[float] = []
        s3fs: list[float] = []
        for _ in range(reps):
            local.append(mlbuild(ws, env, "plan", "--no-remote")[0])
            for reader, samples in (("", remote), ("s3fs", s3fs)):
                elapsed, done = mlbuild(ws, {**env, "MLBUILD_S3_READS": reader}, "plan", "--json")
                if {s["action"] for s in json.loads(done.stdout)[0]["steps"]} != {"run"}:
                    raise SystemExit("a miss was expected for every step")
                samples.append(elapsed)
        found[f"local-{n}"] = statistics.median(local)
        found[f"remote-{n}"] = statistics.median(remote)
        found[f"s3fs-{n}"] = statistics.median(s3fs)
    for reader in ("remote", "s3fs"):
        one = found[f"{reader}-1"] - found["local-1"]
        many = found[f"{reader}-{steps}"] - found[f"local-{steps}"]
        found[f"{reader}-fixed"] = one
        found[f"{reader}-per_step"] = (many - one) / (steps - 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40, help="steps in the misses recipe")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mlbuild-bench-remote-"))
    try:
        with s3_server() as s3:
            warm = warm_remote(root, s3, args.reps)
            miss = misses(root, s3, args.steps, args.reps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n = args.steps
    run, restore, s3fs = warm["run"], warm["restore"], warm["restore-s3fs"]
    rows: list[tuple[str, float, float | None, str]] = [
        ("examples/iris, fresh clone: `run --no-remote` (4 steps run)", run[0], None, ""),
        ("examples/iris, fresh clone: `run`, warm remote (4 restored)", restore[0], s3fs[0], ""),
        ("restore from the remote vs run", run[0] / restore[0], run[0] / s3fs[0], "≥ 5×"),
        ("the same in CPU seconds: run", run[1], None, ""),
        ("the same in CPU seconds: restore", restore[1], s3fs[1], ""),
        ("restore from the remote vs run, CPU", run[1] / restore[1], run[1] / s3fs[1], "info"),
        (
            f"`mlbuild plan`, {n} steps, local cache only",
            miss[f"local-{n}"],
            None,
            "",
        ),
        (
            f"`mlbuild plan`, {n} steps, every step a remote miss",
            miss[f"remote-{n}"],
            miss[f"s3fs-{n}"],
            "",
        ),
        (
            "once per command: connecting, first miss",
            miss["remote-fixed"],
            miss["s3fs-fixed"],
            "",
        ),
        ("each further remote miss", miss["remote-per_step"], miss["s3fs-per_step"], "< 50 ms"),
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"median of {args.reps}; moto on 127.0.0.1; {os.cpu_count()} CPUs; load after: {load}")
    print("| measurement | mlbuild's S3 reads | s3fs reads | target | result |")
    print("|---|---|---|---|---|")
    for name, value, peer, target in rows:
        ratio = name.startswith("restore from")
        if target == "≥ 5×":
            ok: bool | None = value >= 5
        elif target == "< 50 ms":
            ok = value < 0.05
        else:
            ok = None
        result = "info" if ok is None else "PASS" if ok else "FAIL"
        shown, other = _shown(value, ratio), _shown(peer, ratio)
        print(f"| {name} | {shown} | {other} | {target or '—'} | {result} |")
    print()
    print("fresh clone of examples/iris, medians: where a restore's time goes")
    print("| what the fresh clone does | wall | CPU |")
    print("|---|---|---|")
    floors = [
        ("`plan --no-remote` (start-up, compiling the recipe)", warm["compile"]),
        ("`run --no-remote`, every step restored from a warm local cache", warm["restore-local"]),
        ("`run`, every step restored from the warm remote", restore),
        ("`run --no-remote`, every step run", run),
    ]
    for name, (wall, cpu) in floors:
        print(f"| {name} | {_shown(wall, False)} | {_shown(cpu, False)} |")


def _shown(value: float | None, ratio: bool) -> str:
    if value is None:
        return "—"
    if ratio:
        return f"{value:.1f}×"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


if __name__ == "__main__":
    main()
