"""Two workers never both decide that the study needs its last trial: the question and the
trial's creation happen under the storage's lock (mlbuild/search/claim.py), on SQLite and on a
real PostgreSQL, and a dead holder's lock is dropped."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mlbuild.search.claim import TrialClaim


def _second_waits_for_first(url: str) -> None:
    first, second = TrialClaim(url, "study-a"), TrialClaim(url, "study-a")
    other_study = TrialClaim(url, "study-b")
    got = threading.Event()

    def take() -> None:
        with second.held():
            got.set()

    try:
        with first.held():
            waiter = threading.Thread(target=take)
            waiter.start()
            with other_study.held():  # another study's claim is not this one's
                pass
            assert not got.wait(0.5), "the second worker claimed while the first held the lock"
            first.release()  # what the objective does once its trial is RUNNING
            assert got.wait(30)
            waiter.join(30)
        first.release()  # idempotent
    finally:
        for claim in (first, second, other_study):
            claim.close()


def test_sqlite_claims_are_one_at_a_time(tmp_path: Path) -> None:
    _second_waits_for_first(f"sqlite:///{tmp_path / 'study.db'}")


def test_postgresql_claims_are_one_at_a_time(postgres: Any) -> None:
    _second_waits_for_first(postgres.database())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_holder_does_not_keep_the_lock(
    backend: str, tmp_path: Path, postgres: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}" if backend == "sqlite" else postgres.database()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from mlbuild.search.claim import TrialClaim\n"
            "claim = TrialClaim(sys.argv[1], 'study-a')\n"
            "claim._acquire()\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        holder.kill()
        holder.wait(30)
        claim = TrialClaim(url, "study-a")
        got = threading.Event()

        def take() -> None:
            with claim.held():
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert got.wait(60), "the lock of a SIGKILLed worker was not dropped"
        taker.join(30)  # it releases the lock on leaving; close only after
        claim.close()
    finally:
        holder.kill()
