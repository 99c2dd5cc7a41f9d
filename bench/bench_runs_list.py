"""How fast `mlbuild runs list` answers over 10,000 recorded runs (issue #4: under 0.5 s).

Fills a store with N realistic runs (nested params, metrics, tags, four steps, three artifacts
each), then times the real CLI in subprocesses and prints medians:

    python bench/bench_runs_list.py                    # SQLite, .mlbuild/runs.db in a temp dir
    python bench/bench_runs_list.py --store postgresql://postgres@127.0.0.1:5432/bench

Run it from the repository root; it puts this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

QUERIES = {
    "runs list": ["runs", "list"],
    "runs list --sort accuracy": ["runs", "list", "--sort", "accuracy"],
    "runs list --metric 'accuracy>=0.9' --param train.lr<0.05": [
        "runs", "list", "--metric", "accuracy>=0.9", "--param", "train.lr<0.05"
    ],
    "runs list --tag best": ["runs", "list", "--tag", "best"],
    "runs list -n 0 --json (all)": ["runs", "list", "-n", "0", "--json"],
    "runs show ID": ["runs", "show", "{id}"],
}  # fmt: skip


def fill(url: str, count: int) -> str:
    """Insert ``count`` finished runs in bulk; returns one run's id."""
    import sqlalchemy as sa

    from mlbuild.nested import leaves as _leaves
    from mlbuild.store import Artifact, GitInfo, RunRecord, RunStatus, StepEntry, open_store
    from mlbuild.store.query import as_number, as_text
    from mlbuild.store.schema import (
        run_artifacts,
        run_metrics,
        run_params,
        run_steps,
        run_tags,
        runs,
    )
    from mlbuild.store.sql import SqlRunStore, _run_row

    store = open_store(url)
    assert isinstance(store, SqlRunStore)
    rng = random.Random(4)
    now = time.time()
    batch: dict[str, list[dict[str, object]]] = {}
    some_id = ""
    for i in range(count):
        run_id = uuid.uuid4().hex
        some_id = run_id
        params = {
            "train": {"lr": rng.choice([0.001, 0.01, 0.03, 0.1]), "epochs": rng.randint(5, 50)},
            "model": {"name": rng.choice(["tree", "forest", "logreg"]), "depth": rng.randint(2, 9)},
            "data": {"seed": i % 7, "test_size": 0.25},
        }
        metrics = {"accuracy": rng.random(), "f1_macro": rng.random(), "loss": rng.random() * 3}
        started = now - (count - i) * 60
        record = RunRecord(
            id=run_id,
            kind="run",
            recipe_name="bench",
            recipe_hash=uuid.uuid4().hex * 2,
            git=GitInfo(uuid.uuid4().hex[:40], "main", i % 5 == 0, None),
            user="ana",
            host="laptop",
            pid=1000 + i,
            python="3.11.7",
            lock_hash=uuid.uuid4().hex * 2,
            started=started,
            status=RunStatus.FINISHED if i % 20 else RunStatus.FAILED,
            ended=started + rng.random() * 100,
            overrides=[f"train.lr={params['train']['lr']}"],
            params=params,
            metrics=metrics,
            tags={"best": "yes"} if i % 100 == 0 else {"owner": "ana"},
            process="elsewhere:0:1:1",
            steps=[StepEntry(s, "ran", uuid.uuid4().hex * 2, 1.5, False) for s in "abcd"],
            artifacts=[Artifact(f"out/{a}.bin", uuid.uuid4().hex * 2, 1000, "d") for a in "xyz"],
        )
        batch.setdefault("runs", []).append(_run_row(record))
        for table, values in (("params", _leaves(params)), ("metrics", metrics)):
            batch.setdefault(table, []).extend(
                {"run_id": run_id, "key": k, "value_text": as_text(v), "value_num": as_number(v)}
                for k, v in values.items()
            )
        batch.setdefault("tags", []).extend(
            {"run_id": run_id, "key": k, "value": v} for k, v in record.tags.items()
        )
        batch.setdefault("steps", []).extend(
            {"run_id": run_id, "position": n, **s.__dict__} for n, s in enumerate(record.steps)
        )
        batch.setdefault("artifacts", []).extend(
            {"run_id": run_id, **a.__dict__} for a in record.artifacts
        )
    tables = {
        "runs": runs,
        "params": run_params,
        "metrics": run_metrics,
        "tags": run_tags,
        "steps": run_steps,
        "artifacts": run_artifacts,
    }
    with store.engine.begin() as conn:
        for name, table in tables.items():
            rows = batch[name]
            for start in range(0, len(rows), 5000):
                conn.execute(sa.insert(table), rows[start : start + 5000])
    store.close()
    return some_id


def time_cli(
    workspace: Path, argv: list[str], env: dict[str, str], repeat: int
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of ``repeat`` runs of ``mlbuild ARGV``.

    CPU time is reported too because these machines are shared: wall time there measures the
    neighbours as much as us."""
    wall, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "mlbuild", *argv],
            cwd=workspace,
            env=env,
            capture_output=True,
            check=False,
        )
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"mlbuild {' '.join(argv)} failed: {done.stderr.decode()}")
    return wall, cpu


def report(label: str, wall: list[float], cpu: list[float]) -> None:
    print(
        f"| {label} | {statistics.median(wall):.3f} | {min(wall):.3f} | "
        f"{statistics.median(cpu):.3f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--store", help="a store URL (default: SQLite in the temp workspace)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        (workspace / "ml.yaml").write_text(
            "schema_version: 1\nname: bench\nsteps:\n  a: {cmd: 'true'}\n"
        )
        url = args.store or f"sqlite:///{workspace}/.mlbuild/runs.db"
        env = {**os.environ, "PYTHONPATH": str(REPO), "MLBUILD_STORE": url}
        started = time.perf_counter()
        some_id = fill(url, args.runs)
        print(f"filled {args.runs} runs in {time.perf_counter() - started:.1f}s ({url})")
        print(f"load average before: {os.getloadavg()[0]:.2f}, runs: {args.repeat} each\n")
        print("| command | wall median (s) | wall min (s) | CPU median (s) |")
        print("| --- | --- | --- | --- |")
        report(
            "`mlbuild --version` (start-up)", *time_cli(workspace, ["--version"], env, args.repeat)
        )
        for label, words in QUERIES.items():
            argv = [w.format(id=some_id[:8]) for w in words]
            report(f"`mlbuild {label}`", *time_cli(workspace, argv, env, args.repeat))
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
