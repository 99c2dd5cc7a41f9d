"""What each command imports (``python -X importtime``, one untimed sample after the timed
repetitions): a no-op ``mlbuild run`` must import neither DVC nor pydantic nor Hydra."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import CHANGED, DD, HEAVY, IMPORT_GROUPS, BenchError, Table
from vs_dvc.repos import change_data_file

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


@dataclass
class Probe:
    """One command run under ``python -X importtime``."""

    label: str
    cwd: Path
    argv: list[str]
    check: str  # "heavy": none of HEAVY; "light": neither pydantic nor Hydra either; "": none
    wall: float = 0.0
    modules: list[str] = field(default_factory=list)  # top-level packages
    costs: dict[str, float] = field(default_factory=dict)  # group → ms of its modules' own time

    def parse(self, stderr: str) -> None:
        line = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", re.M)
        top: set[str] = set()
        for own_us, name in line.findall(stderr):
            package = name.split(".")[0]
            top.add(package)
            group = next((g for g, members in IMPORT_GROUPS.items() if package in members), "")
            self.costs[group] = self.costs.get(group, 0.0) + int(own_us) / 1000
        self.modules = sorted(top)

    def forbidden(self) -> list[str]:
        banned = HEAVY if self.check == "heavy" else ("pydantic", "hydra", "omegaconf", *HEAVY)
        return [m for m in self.modules if m in banned]


def measure(bench: Bench) -> list[Probe]:
    """What each command imports, from ``python -X importtime`` (one untimed sample)."""
    python = bench.tools.mlbuild_python()
    ml, mlh, dd = bench.last["ml"], bench.last["mlh"], bench.last.get(DD)
    for repo in (ml, mlh):
        bench.mlbuild(repo, "run")  # settle after the override runs
    probes = [
        Probe("`mlbuild --help`", bench.workdir, ["--help"], "heavy"),
        Probe("`mlbuild validate`", ml, ["validate"], "heavy"),
        Probe("`mlbuild status`", ml, ["status"], "heavy"),
        Probe("no-op `mlbuild run`", ml, ["run"], "light"),
        Probe("no-op `mlbuild run` (Hydra config tree)", mlh, ["run"], "light"),
        Probe(f"`mlbuild run {CHANGED}.n=V`", ml, ["run", f"{CHANGED}.n=9999"], ""),
    ]
    if dd is not None:
        time.sleep(1.2)
        bench.mlbuild(dd, "run")  # settle after the data change
        probes.append(Probe("no-op `mlbuild run` (DVC-tracked data)", dd, ["run"], "light"))
    for probe in probes:
        _probe(bench, python, probe)
    if dd is not None:  # what verifying a new version of the dataset costs
        change_data_file(dd, bench.args.files)
        bench.dvc(dd, "add", "-q", "data/raw")
        probe = Probe("`mlbuild run` after `dvc add` of a changed file", dd, ["run"], "")
        _probe(bench, python, probe)
        probes.append(probe)
    return probes


def _probe(bench: Bench, python: str, probe: Probe) -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-X", "importtime", bench.tools.mlbuild, *probe.argv],
        cwd=probe.cwd,
        env=bench.tools.ml_env,
        capture_output=True,
        text=True,
        check=False,
    )
    probe.wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{probe.label} failed:\n{proc.stderr[-3000:]}")
    probe.parse(proc.stderr)


def rows(table: Table, probes: list[Probe]) -> None:
    for probe in probes:
        if not probe.check:
            continue
        banned = "pydantic, Hydra or " if probe.check == "light" else ""
        forbidden = probe.forbidden()
        table.fact(
            f"{probe.label} imports no {banned}{', '.join(HEAVY)}",
            "—",
            ", ".join(forbidden) or "none",
            "none",
            not forbidden,
        )


def render_import_costs(probes: list[Probe]) -> str:
    """Milliseconds spent executing each group's modules at import, per probed command."""
    header = ["command", "wall", *IMPORT_GROUPS, "stdlib & other", "all imports"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for probe in probes:
        cells = [f"{probe.costs[g]:.0f}" if g in probe.costs else "" for g in IMPORT_GROUPS]
        cells += [f"{probe.costs.get('', 0.0):.0f}", f"{sum(probe.costs.values()):.0f}"]
        lines.append(f"| {probe.label} | {probe.wall * 1000:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
