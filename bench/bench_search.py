"""mlbuild search against the same search written directly against Optuna (issue 11).

Three figures, each with the real CLI in subprocesses:

1. per-trial overhead: searches of N and 3N trials of a step that does almost nothing (`python
   obj.py`, an interpreter start-up), by `mlbuild search` and by a plain Optuna script whose
   objective runs the same command with the trial's params and reads its metrics file — the
   same process work per trial; the difference of the slopes is mlbuild's overhead per trial
   (target: < 100 ms);
2. workers: a CPU-bound objective (a busy loop of ~2 s of CPU), `--jobs 1` against `--jobs 2`, in
   trials per minute of the whole command (target: >= 1.7x on 2 free cores), and how busy the
   workers were (the trials' summed time over their span: 2 when both always had a trial);
3. `mlbuild search show` on a study of 1,000 finished trials (target: < 1 s).

    python bench/bench_search.py [--trials 10] [--cpu-trials 8] [--show-trials 1000] \
        [--worker-repeat 1] [--baseline REV]

Run it from the repository root; it puts this checkout first on PYTHONPATH. ``--baseline REV``
runs the same mlbuild commands with revision REV too, alternating, so both see the same load.
Each figure is wall time and the child's CPU time (what holds on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
CHECKOUT = REPO  # the mlbuild the figures are of; main() may add a baseline's

RECIPE = """\
schema_version: 1
name: bench
params: {{train: {{x: 0.5, y: 2}}}}
steps:
  obj:
    cmd: python obj.py
    deps: [obj.py]
    params: ["train.*"]
    metrics: [metrics.json]
search:
  hpo:
    step: obj
    objective: {{score: maximize}}
    space:
      train.x: {{type: float, low: 0.0, high: 1.0}}
      train.y: {{type: int, low: 1, high: 100}}
    sampler: random
    seed: 1
    pruner: none
    n_trials: {trials}
"""

OBJ = """\
import json, os
p = json.load(open(os.environ["MLBUILD_PARAMS"]))["train"]
spin = int(os.environ.get("SPIN", "0"))
total = 0
for i in range(spin):
    total += i * i % 7
json.dump({"score": -(p["x"] - 0.3) ** 2 - (p["y"] - 40) ** 2 / 1e4}, open("metrics.json", "w"))
"""

DIRECT = """\
import json, os, subprocess, sys, tempfile, time
import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)
folder = sys.argv[1]


def objective(trial):
    params = {"train": {"x": trial.suggest_float("train.x", 0.0, 1.0),
                        "y": trial.suggest_int("train.y", 1, 100)}}
    with open(os.path.join(folder, "params.json"), "w") as handle:
        json.dump(params, handle)
    env = {**os.environ, "MLBUILD_PARAMS": os.path.join(folder, "params.json")}
    subprocess.run([sys.executable, "obj.py"], cwd=folder, env=env, check=True)
    with open(os.path.join(folder, "metrics.json")) as handle:
        return json.load(handle)["score"]


storage = "sqlite:///" + os.path.join(folder, "direct.db")
study = optuna.create_study(storage=storage, direction="maximize",
                            sampler=optuna.samplers.RandomSampler(seed=1))
study.optimize(objective, n_trials=int(sys.argv[2]))
"""  # fmt: skip


def _env(extra: dict[str, str] | None = None, checkout: Path | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout or CHECKOUT), **(extra or {})}


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    return _timed_cpu(argv, cwd, env)[0]


def _timed_cpu(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU of the command and its children) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def _repo(root: Path, trials: int) -> Path:
    root.mkdir(parents=True)
    (root / "ml.yaml").write_text(RECIPE.format(trials=trials))
    (root / "obj.py").write_text(OBJ)
    return root


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlbuild.cli.main", *args]


def overhead(tmp: Path, trials: int, baseline: Path | None) -> dict[str, float]:
    """Both searches at ``trials`` and at 3x that: the slope is the cost of one more trial, the
    fixed start-up (imports, compiling the graph, the worker's copy) cancels out."""
    found: dict[str, float] = {}
    sides = {"mlbuild": CHECKOUT, **({"baseline": baseline} if baseline else {})}
    for count in (trials, 3 * trials):
        for side, checkout in sides.items():
            wall, cpu = _timed_cpu(
                _cli("search", "hpo"), _repo(tmp / f"{side}-{count}", count), _env(None, checkout)
            )
            found[f"{side}_{count}_s"] = wall
            found[f"{side}_{count}_cpu_s"] = cpu
        direct_dir = _repo(tmp / f"direct-{count}", count)
        (direct_dir / "direct.py").write_text(DIRECT)
        wall, cpu = _timed_cpu(
            [sys.executable, "direct.py", str(direct_dir), str(count)], direct_dir, _env()
        )
        found[f"direct_{count}_s"] = wall
        found[f"direct_{count}_cpu_s"] = cpu
    extra = 2 * trials
    for side in [*sides, "direct"]:
        for unit in ("s", "cpu_s"):
            many, few = found[f"{side}_{3 * trials}_{unit}"], found[f"{side}_{trials}_{unit}"]
            slope = (many - few) / extra
            found[f"{side}_ms_per_trial{'_cpu' if unit == 'cpu_s' else ''}"] = slope * 1000
    for side in sides:
        found[f"{side}_overhead_ms_per_trial"] = (
            found[f"{side}_ms_per_trial"] - found["direct_ms_per_trial"]
        )
        found[f"{side}_overhead_ms_per_trial_cpu"] = (
            found[f"{side}_ms_per_trial_cpu"] - found["direct_ms_per_trial_cpu"]
        )
    return found


def workers(
    tmp: Path, trials: int, spin: int, repeat: int, baseline: Path | None
) -> dict[str, float]:
    """``--jobs 1`` and ``--jobs 2``, alternating (and with the baseline's too), ``repeat``
    times; the median of each. ``busy`` is the trials' own time (start to end, from the study)
    over the span from the first start to the last end: about 2 when both workers had work."""
    found: dict[str, float] = {"trials": trials}
    sides = {"mlbuild": CHECKOUT, **({"baseline": baseline} if baseline else {})}
    runs: dict[str, list[tuple[float, float, float]]] = {}
    for round_ in range(repeat):
        for side, checkout in sides.items():
            for jobs in (1, 2):
                repo = _repo(tmp / f"jobs-{side}-{jobs}-{round_}", trials)
                argv = _cli("search", "hpo", "--jobs", str(jobs))
                wall, cpu = _timed_cpu(argv, repo, _env({"SPIN": str(spin)}, checkout))
                runs.setdefault(f"{side}_jobs{jobs}", []).append((wall, cpu, _busy(repo)))
    for key, got in runs.items():
        wall = statistics.median(w for w, _, _ in got)
        found[f"{key}_s"] = wall
        found[f"{key}_cpu_s"] = statistics.median(c for _, c, _ in got)
        found[f"{key}_busy"] = statistics.median(b for _, _, b in got)
        found[f"{key}_trials_per_min"] = trials / wall * 60
    for side in sides:
        found[f"{side}_speedup"] = (
            found[f"{side}_jobs2_trials_per_min"] / found[f"{side}_jobs1_trials_per_min"]
        )
    return found


def _busy(repo: Path) -> float:
    """Sum of the trials' durations over their span, read from the study."""
    with sqlite3.connect(repo / ".mlbuild" / "search.db") as db:
        rows = db.execute(
            "SELECT datetime_start, datetime_complete FROM trials WHERE datetime_complete "
            "IS NOT NULL"
        ).fetchall()
    spans = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in rows]
    total = sum((b - a).total_seconds() for a, b in spans)
    span = (max(b for _, b in spans) - min(a for a, _ in spans)).total_seconds()
    return total / span if span > 0 else 0.0


def show(tmp: Path, count: int, repeat: int, baseline: Path | None) -> dict[str, float]:
    repo = _repo(tmp / "show", 1)
    fill = textwrap.dedent(
        f"""\
        import random, optuna
        from optuna.distributions import FloatDistribution, IntDistribution
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(storage="sqlite:///.mlbuild/search.db", study_name="big",
                                    direction="maximize")
        rng = random.Random(0)
        dists = {{"train.x": FloatDistribution(0.0, 1.0), "train.y": IntDistribution(1, 100)}}
        study.add_trials([
            optuna.trial.create_trial(
                params={{"train.x": rng.random(), "train.y": rng.randint(1, 100)}},
                distributions=dists, value=rng.random(),
                user_attrs={{"run_id": "%032x" % rng.getrandbits(128)}})
            for _ in range({count})
        ])
        """
    )
    (repo / ".mlbuild").mkdir()
    subprocess.run([sys.executable, "-c", fill], cwd=repo, env=_env(), check=True)
    argv = _cli("search", "show", "hpo", "--study", "big")
    sides = {"mlbuild": CHECKOUT, **({"baseline": baseline} if baseline else {})}
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    json_times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for _ in range(repeat):  # alternating, so both sides see the same load
        for side, checkout in sides.items():
            times[side].append(_timed_cpu(argv, repo, _env(None, checkout)))
            json_times[side].append(_timed_cpu([*argv, "--json"], repo, _env(None, checkout)))
    found: dict[str, float] = {"trials": count}
    for side in sides:
        found[f"{side}_show_median_s"] = statistics.median(t for t, _ in times[side])
        found[f"{side}_show_median_cpu_s"] = statistics.median(c for _, c in times[side])
        found[f"{side}_show_min_s"] = min(t for t, _ in times[side])
        found[f"{side}_show_json_median_s"] = statistics.median(t for t, _ in json_times[side])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cpu-trials", type=int, default=8)
    parser.add_argument("--spin", type=int, default=12_000_000, help="busy-loop iterations")
    parser.add_argument("--show-trials", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worker-repeat", type=int, default=1, help="rounds of the workers")
    parser.add_argument("--skip", nargs="*", default=[], choices=["overhead", "workers", "show"])
    parser.add_argument("--baseline", metavar="REV", help="also time mlbuild at this revision")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mlbuild-bench-search-") as folder:
        tmp = Path(folder)
        base = None
        if args.baseline:
            from baseline import export

            base = export(args.baseline, tmp / "baseline-checkout")
        if "overhead" not in args.skip:
            results["overhead"] = overhead(tmp, args.trials, base)
        if "workers" not in args.skip:
            results["workers"] = workers(tmp, args.cpu_trials, args.spin, args.worker_repeat, base)
        if "show" not in args.skip:
            results["show"] = show(tmp, args.show_trials, args.repeat, base)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
