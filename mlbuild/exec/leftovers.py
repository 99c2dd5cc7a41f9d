"""Steps die with the run: the guard while mlbuild lives, and records for when even that fails.

While a step's process runs, ``.mlbuild/running/STEP.json`` names it: its pid, its process group
and its start time (``/proc/PID/stat``, so a reused pid is never mistaken for it). The guard
(:mod:`mlbuild.exec.guard`) stops the groups of a run that dies; if the guard died too (an OOM
killer, ``kill -9`` of both), the next run, on taking the workspace's lock and before starting
anything, finds the records left behind and stops what still runs of them — or refuses, naming the
pid, when it is not allowed to.

The records are plain small files written in one ``write``, without fsync: a power loss, the one
thing that could tear them, also ends the processes they name.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from mlbuild import atomic, procfs
from mlbuild.errors import LockedError
from mlbuild.exec.executor import DEFAULT, EXECUTORS, GRACE_SECONDS, executor_class
from mlbuild.exec.guard import Guard
from mlbuild.store import process_token

RUNNING_DIR = "running"
_EXECUTORS = "executors"  # under RUNNING_DIR: one empty file per executor a run may use
_MAX_RECORD = 4096  # bytes of a record read at most
_KILL_WAIT = 5.0  # after SIGKILL, how long to wait for a group to go (zombies may linger)


class Tracker:
    """Watches the steps a run starts: registers them with the guard and records them on disk."""

    def __init__(self, meta: Path) -> None:
        self.folder = meta / RUNNING_DIR
        self.guard = Guard(GRACE_SECONDS)

    def started(self, step: str, pid: int) -> None:
        """``pid`` (the leader of its own group) now runs ``step``."""
        self.guard.add(pid)
        atomic.own_folder(self.folder).mkdir(parents=True, exist_ok=True)
        record = {"step": step, "pid": pid, "process": process_token(pid)}
        path = self.folder / f"{step}.json"
        # not through a symlink planted as the record (it would truncate what it points to)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, json.dumps(record).encode())
        finally:
            os.close(fd)

    def ended(self, step: str, pid: int) -> None:
        """``step``'s process and its group are gone."""
        self.guard.discard(pid)
        if not atomic.planted(self.folder):  # nothing removed through a planted folder
            (self.folder / f"{step}.json").unlink(missing_ok=True)

    def close(self) -> None:
        self.guard.close()


def stop_leftovers(meta: Path, report: Callable[[str], None]) -> None:
    """Stop the steps an earlier run left running, if any; call with the run lock held. Raises
    :class:`~mlbuild.errors.PlantedError` when ``.mlbuild/running`` is a symlink (maybe out of
    the workspace), a file or a FIFO: its records are neither trusted nor removed."""
    folder = atomic.own_folder(meta / RUNNING_DIR)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        try:  # not through a symlink, nor waiting on a FIFO planted as a record
            record = json.loads(atomic.read_own(path, _MAX_RECORD))
            step, pid, token = str(record["step"]), int(record["pid"]), str(record["process"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # torn or foreign: names nothing we could safely signal
            continue
        if _ours(pid, token) and procfs.group(pid):
            _stop_group(step, pid)
            report(
                f"stopped step '{step}' (process group {pid}), left running by an mlbuild run "
                "that was killed"
            )
        path.unlink(missing_ok=True)


def _ours(pid: int, token: str) -> bool:
    """Is process group ``pid`` still the step's? Not if the record comes from before a reboot
    or another pid namespace, nor if the pid now belongs to a later process."""
    parts = token.split(":")  # BOOT_ID:PIDNS:PID:STARTTIME (mlbuild/store/liveness.py)
    if len(parts) != 4 or parts[:2] != process_token().split(":")[:2] or not parts[3]:
        return False
    leader = procfs.stat(pid)
    # a vanished leader is fine: while any process of its group lives, the group id stays taken
    return leader is None or leader.start == parts[3]


def _stop_group(step: str, pgid: int) -> None:
    """SIGTERM, SIGKILL after the grace period; wait for the group's living processes to go."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, _KILL_WAIT)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        except PermissionError as exc:
            raise LockedError(
                f"step '{step}' of an earlier mlbuild run is still running (process group "
                f"{pgid}) and cannot be stopped: {exc.strerror}; stop it (`kill -- -{pgid}`) "
                "and run again"
            ) from None
        deadline = time.monotonic() + wait
        while procfs.group(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return
    # after SIGKILL only a process stuck in the kernel can remain: it runs no code again


def note_executors(meta: Path, names: Iterable[str]) -> None:
    """Note, before a run starts anything, the executors it may use other than the local one
    (whose steps are noted one by one): if the run is killed, the next asks them for leftovers."""
    others = sorted(set(names) - {DEFAULT})
    if not others:
        return
    folder = atomic.own_folder(atomic.own_folder(meta / RUNNING_DIR) / _EXECUTORS)
    folder.mkdir(parents=True, exist_ok=True)
    for name in others:
        (folder / name).touch()


def forget_executors(meta: Path) -> None:
    """The run ended and stopped everything it started: no executor has leftovers of it."""
    folder = meta / RUNNING_DIR / _EXECUTORS
    if not atomic.planted(meta / RUNNING_DIR) and not atomic.planted(folder) and folder.is_dir():
        for path in folder.iterdir():
            path.unlink(missing_ok=True)


def stop_executor_leftovers(meta: Path, report: Callable[[str], None]) -> None:
    """Ask each executor a killed run noted to stop what it left running; call with the run lock
    held, after :func:`stop_leftovers`."""
    folder = atomic.own_folder(atomic.own_folder(meta / RUNNING_DIR) / _EXECUTORS)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name in EXECUTORS:
            for what in executor_class(path.name)().leftovers(meta.parent):
                report(what)  # whole sentences, as the local executor's
        path.unlink(missing_ok=True)
