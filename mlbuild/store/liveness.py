"""Is the process that records a run still alive? Asked only about processes on this machine.

A run's ``process`` token is ``BOOT_ID:PIDNS:PID:STARTTIME``: the kernel's boot id and the pid
namespace tell whether the recording process could be seen from here at all (another machine, or
another container sharing a host name, cannot), and the process's start time tells a reused pid
from the original. A process elsewhere is judged by its heartbeat alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild import procfs


def process_token(pid: int | None = None) -> str:
    """The token of process ``pid`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{_machine()}:{pid}:{_start_time(pid) or ''}"


def is_gone(token: str) -> bool:
    """True when ``token`` names a process of this machine that no longer runs."""
    parts = token.split(":")
    if len(parts) != 4 or f"{parts[0]}:{parts[1]}" != _machine() or not parts[2].isdigit():
        return False
    current = _start_time(int(parts[2]))
    if current is None:
        return True
    return "?" not in (current, parts[3]) and bool(parts[3]) and current != parts[3]


def _machine() -> str:
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return f"{os.uname().nodename}:0"
    return f"{boot}:{namespace}"


def _start_time(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks after boot; None if there is no such process."""
    found = procfs.stat(pid)
    if found is None:
        if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel directly
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return "?"
        return None
    if found.zombie:
        return None  # a zombie has exited; only its parent has not reaped it yet
    return found.start
