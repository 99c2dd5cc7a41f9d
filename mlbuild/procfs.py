"""Processes as Linux's ``/proc`` describes them: state, process group, session, start time.

The start time (clock ticks after boot) tells a process from a later one that reused its pid. On a
system without ``/proc`` every answer is "unknown" (None, or no processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str  # "R", "S", "D", "Z" (a zombie: exited, not yet reaped by its parent), …
    pgid: int
    session: int
    start: str

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def stat(pid: int) -> ProcStat | None:
    """What ``/proc/PID/stat`` says of process ``pid``; None if there is none (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return ProcStat(pid, fields[0], int(fields[2]), int(fields[3]), fields[19])


def group(pgid: int) -> list[ProcStat]:
    """The living (not zombie) processes of process group ``pgid``."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.isdigit():
            info = stat(int(entry))
            if info is not None and info.pgid == pgid and not info.zombie:
                found.append(info)
    return found
