"""Workers: several processes on one study, a PostgreSQL storage shared like a team's, a worker
killed with SIGKILL mid-trial, Ctrl-C. Real processes, real Optuna storages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHILD_ENV, Workspace
from tests.search.world import SPACE, TRAIN, ran, show, toy, trials_by_number


def _start(ws: Workspace, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """The CLI in a process group of its own, as a terminal starts it: Ctrl-C reaches the group."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlbuild.cli.main", *args],
        cwd=ws.root,
        env={**os.environ, **CHILD_ENV, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_jobs_runs_workers_in_their_own_copies_on_one_study(ws: Workspace, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    env = toy(ws, SPACE + "    n_trials: 6\n    seed: 8\n", markers)
    done = ws.cli("search", "hpo", "--jobs", "2", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(", 2 workers")
    # the workers (this process forked) print their trials and no header of their own
    assert [line for line in done.stdout.splitlines() if line.startswith("search hpo:")] == [
        done.stdout.splitlines()[0]
    ]
    assert len([line for line in done.stdout.splitlines() if line.startswith("trial ")]) == 6
    report = show(ws, env)
    assert report["counts"] == {"complete": 6}
    numbers = [t["number"] for t in trials_by_number(report)]
    assert numbers == list(range(6))
    # the workers proposed six different points: their samplers are seeded apart
    assert len({json.dumps(t["params"], sort_keys=True) for t in report["top"]}) == 6
    copies = sorted(p.name for p in (ws.root / ".mlbuild" / "search" / "hpo").iterdir())
    assert copies == ["best.json", "worker-0", "worker-0.lock", "worker-1", "worker-1.lock"]
    assert len(ran(markers, "train")) == 6
    assert len(ran(markers, "prep")) <= 2  # each worker restores it, or runs it at most once


def _worker(ws: Workspace, env: dict[str, str]) -> Any:
    return ws.start("search", "hpo", "--worker", env=env)


def test_two_workers_share_a_postgresql_study(make_ws: Any, tmp_path: Path, postgres: Any) -> None:
    url = postgres.database()
    clones = [make_ws("machine-a"), make_ws("machine-b")]  # two clones, as on two machines
    envs = []
    for index, ws in enumerate(clones):
        env = toy(
            ws,
            SPACE + f"    n_trials: 6\n    seed: 2\n    storage: {url}\n",
            tmp_path / f"markers-{index}",
        )
        envs.append(env)
    workers = [_worker(ws, env) for ws, env in zip(clones, envs, strict=True)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    # a --worker prints its trials and no summary
    lines = [[line for line in out.splitlines() if line.startswith("trial ")] for out, _ in outputs]
    assert all(not out.startswith("search hpo") for out, _ in outputs)
    assert sum(len(found) for found in lines) == 6
    report = show(clones[0], envs[0])
    assert report["counts"] == {"complete": 6}
    assert report["storage"] == url
    assert [t["number"] for t in trials_by_number(report)] == list(range(6))
    # both clones compute the same study name: they cooperated on one study
    assert show(clones[1], envs[1])["study"] == report["study"]


def test_a_worker_killed_mid_trial_has_its_trial_retried_and_the_study_survives(
    ws: Workspace, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    hold = tmp_path / "hold"
    hold.touch()
    grid = """\
    space:
      train.lr: [0.01, 0.03]
      train.depth: [1, 5]
    sampler: grid
    seed: 0
"""
    env = {**toy(ws, grid, markers), "MLBUILD_SEARCH_HEARTBEAT": "1", "HOLD": str(hold)}
    first = _worker(ws, env)
    _wait_for(Path(f"{hold}.started"))  # its first trial is inside the step
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    held = ran(markers, "train")[0]
    hold.unlink()
    second = _worker(ws, {**env, "HOLD": ""})
    _out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    report = show(ws, env)
    # the killed trial failed by its stale heartbeat, and ran again with the same params
    assert report["counts"] == {"complete": 4, "fail": 1}
    trials = trials_by_number(report)
    assert [t["params"] for t in trials if t["state"] == "complete"].count(
        {"train.lr": held["lr"], "train.depth": held["depth"]}
    ) == 1
    grid_points = {(t["params"]["train.lr"], t["params"]["train.depth"]) for t in trials}
    assert grid_points == {(0.01, 1), (0.01, 5), (0.03, 1), (0.03, 5)}
    # the killed worker's step did not outlive it
    assert len(ran(markers, "train")) == 5


def test_a_worker_killed_in_the_studys_last_trial_has_it_retried_by_the_one_left(
    ws: Workspace, tmp_path: Path
) -> None:
    """The survivor's count sees the study complete but for a running trial, so it would wait;
    only before waiting does it fail stale trials (Optuna's trial loop does it before a trial),
    and then the dead worker's trial is retried instead of waited for forever."""
    markers = tmp_path / "markers"
    hold = tmp_path / "hold"
    hold.touch()
    grid = """\
    space:
      train.lr: [0.01]
      train.depth: [1]
    sampler: grid
    seed: 0
"""
    env = {**toy(ws, grid, markers), "MLBUILD_SEARCH_HEARTBEAT": "1", "HOLD": str(hold)}
    first = _worker(ws, env)
    _wait_for(Path(f"{hold}.started"))
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    hold.unlink()
    second = _worker(ws, {**env, "HOLD": ""})
    _out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    report = show(ws, env)
    assert report["counts"] == {"complete": 1, "fail": 1}
    assert len(ran(markers, "train")) == 2


def test_jobs_workers_run_the_command_lines_overrides(ws: Workspace, tmp_path: Path) -> None:
    """The forked workers take the search the parent compiled, overrides included, rather
    than compiling it again."""
    markers = tmp_path / "markers"
    grid = """\
    space:
      train.lr: [0.01, 0.03]
    sampler: grid
    seed: 0
"""
    env = toy(ws, grid, markers)
    done = ws.cli("search", "hpo", "--jobs", "2", "train.depth=7", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted((t["lr"], t["depth"]) for t in ran(markers, "train")) == [(0.01, 7), (0.03, 7)]
    assert show(ws, env, "train.depth=7")["counts"] == {"complete": 2}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_the_workers_and_the_study_resumes_where_it_stopped(
    ws: Workspace, tmp_path: Path, jobs: str
) -> None:
    markers = tmp_path / "markers"
    hold = tmp_path / "hold"
    hold.touch()
    grid = """\
    space:
      train.lr: [0.01, 0.03]
      train.depth: [1, 5]
    sampler: grid
    seed: 0
"""
    env = {**toy(ws, grid, markers), "HOLD": str(hold)}
    search = _start(ws, "search", "hpo", "--jobs", jobs, env=env)
    deadline = time.monotonic() + 120
    while len(ran(markers, "train")) < int(jobs):  # each worker's trial is inside the step
        assert time.monotonic() < deadline, "the workers' trials never started"
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(search.pid, signal.SIGINT)  # Ctrl-C: the whole group, workers and steps
    out, err = search.communicate(timeout=120)
    assert search.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert (
        "mlbuild: search hpo stopped; the study keeps its trials: run `mlbuild search hpo` "
        "again to resume"
    ) in err
    # every worker's trial was inside the step, and was failed
    held = [{"train.lr": t["lr"], "train.depth": t["depth"]} for t in ran(markers, "train")]
    assert len(held) == int(jobs)
    hold.unlink()
    resumed = ws.cli("search", "hpo", env={**env, "HOLD": ""}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    report = show(ws, env)
    assert report["counts"] == {"complete": 4, "fail": int(jobs)}
    completed = [t["params"] for t in trials_by_number(report) if t["state"] == "complete"]
    # the interrupted trials run first when the study resumes, with the same params
    assert sorted(map(_key, completed[: len(held)])) == sorted(map(_key, held))
    assert len(set(map(_key, completed))) == 4


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def test_a_worker_waiting_for_the_last_trial_of_another_leaves_the_claim_free(
    ws: Workspace, tmp_path: Path
) -> None:
    """A worker whose study only waits for another worker's last trial sleeps without the trial
    claim (mlbuild/search/claim.py): held, it kept every other worker from even asking whether
    the study was done."""
    import fcntl
    import sqlite3

    markers = tmp_path / "markers"
    hold = tmp_path / "hold"
    hold.touch()
    grid = """\
    space:
      train.lr: [0.01]
      train.depth: [1, 5]
    sampler: grid
    seed: 0
"""
    env = {**toy(ws, grid, markers), "HOLD": str(hold)}
    train = TRAIN.replace("if hold and os.path.exists(hold):", 'if hold and p["depth"] == 1:')
    assert train != TRAIN
    ws.gen({"train.py": train})  # the trial of depth 1 waits for the hold file to go
    search = _start(ws, "search", "hpo", "--jobs", "2", env=env)
    try:
        _wait_for(Path(f"{hold}.started"))
        database = ws.root / ".mlbuild" / "search.db"
        deadline = time.monotonic() + 120
        while True:  # the trial of depth 5 is complete: its worker waits for the other's
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                done = db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'")
                if done.fetchone()[0] == 1:
                    break
            assert time.monotonic() < deadline, "the trial of depth 5 never completed"
            time.sleep(0.1)
        (claim,) = (ws.root / ".mlbuild").glob("search.db.claim-*")
        fd = os.open(claim, os.O_RDWR)
        free = 0
        try:
            for _ in range(40):  # 4 s: the waiting worker looks at the study every 0.5 s
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    free += 1
                time.sleep(0.1)
        finally:
            os.close(fd)
        # held while it sleeps, it was free 0 times (half its sleep: 20); its looks take a while
        assert free >= 24, f"the claim was free {free} times in 40"
    finally:
        hold.unlink()
        _out, err = search.communicate(timeout=300)
    assert search.returncode == 0, err
    assert show(ws, env)["counts"] == {"complete": 2}
