"""A watchdog process that stops the running steps' process groups when mlbuild dies.

A step's own process gets SIGTERM from the kernel when mlbuild dies (``PR_SET_PDEATHSIG``), but
its children do not, and nothing can run inside a process killed by SIGKILL. So the first step a
run starts also starts this guard: a tiny Python process (``-I -S``: standard library only, ~10 ms)
in its own session, reading "+PGID" and "-PGID" lines on a pipe from mlbuild. Only mlbuild holds
the pipe's write end, so the guard reads end-of-file exactly when mlbuild exits, however it dies;
it then signals every group still registered: SIGTERM, and SIGKILL to those still there after the
grace period (a zombie counts as there: where init does not reap, the guard lingers for the grace
period, harmlessly). After a clean exit nothing is registered and the guard just ends.

Run as a script, this file is the guard; imported, :class:`Guard` is mlbuild's side of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time


class Guard:
    """mlbuild's side: register process groups with the watchdog, started on first use."""

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def add(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def discard(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """Let the watchdog go: every group it watched is gone, so it has nothing to do."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.wait()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", __file__, str(self._grace)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd="/",  # never keep a workspace's file system busy
                    start_new_session=True,  # no Ctrl-C or hang-up from mlbuild's terminal
                )
            assert self._proc.stdin is not None
            # a dead guard cannot be helped here; the running-step records still let the next
            # run stop what this one leaves behind
            with contextlib.suppress(OSError):
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()


def _watch(grace: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        sign, pgid = line[:1], int(line[1:])
        if sign == b"+":
            groups.add(pgid)
        else:
            groups.discard(pgid)
    # mlbuild has exited: whatever is still registered was running when it died
    alive = _signal_all(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _signal_all(alive, 0)
    _signal_all(alive, signal.SIGKILL)


def _signal_all(groups: set[int], sig: int) -> set[int]:
    """Send ``sig`` to each group; the groups that still exist."""
    alive = set()
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, sig)
            alive.add(pgid)
    return alive


if __name__ == "__main__":
    _watch(float(sys.argv[1]))
