"""What every case shares: the pipeline's constants, running and timing a command, the samples,
and the results table's rows."""

from __future__ import annotations

import json
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# name → deps (besides stage.py). Outputs are out/<name>.txt.
STAGES: dict[str, list[str]] = {
    "s1": ["data/raw"],
    "s2": ["data/raw"],
    "s3": ["out/s1.txt", "out/s2.txt"],
    "s4": ["data/raw"],
    "s5": ["out/s3.txt", "out/s4.txt"],
    "s6": ["out/s5.txt"],
    "s7": ["out/s6.txt"],
    "s8": ["out/s7.txt", "out/s4.txt"],
}
CHANGED = "s6"
AFFECTED = ["s6", "s7", "s8"]
HEAVY = ("dvc", "optuna", "hydra", "kubernetes", "docker", "sqlalchemy")
KINDS = ("dvc", "ml", "mlh")
# The DVC-data repo ("dd"): data/raw tracked by `dvc add` (data/raw.dvc); dvc.yaml's stages
# depend on data/raw, ml.yaml's read it as the dataset `data:raw`. One repo for both tools, so each
# writes its outputs to its own folder. A changed (unsampled) data file re-runs exactly the stages
# that read data/raw.
DD = "dd"
DD_OUT = {"dvc": "out", "ml": "mlout"}
DATA_READERS = sorted(name for name, deps in STAGES.items() if "data/raw" in deps)
# How the import-time table groups top-level modules; the rest (mostly the stdlib) is "".
IMPORT_GROUPS: dict[str, tuple[str, ...]] = {
    "mlbuild": ("mlbuild",),
    "pydantic": ("pydantic", "pydantic_core", "annotated_types", "typing_inspection"),
    "hydra": ("hydra", "omegaconf", "antlr4"),
    "yaml": ("yaml", "_yaml"),
    "blake3": ("blake3",),
    "dvc": (
        "dvc",
        "dvc_data",
        "dvc_objects",
        "dvc_render",
        "dvc_studio_client",
        "dvc_task",
        "dvc_http",
        "scmrepo",
        "dulwich",
        "pygit2",
        "fsspec",
        "funcy",
        "networkx",
        "kombu",
        "celery",
        "gto",
        "rich",
        "ruamel",
        "voluptuous",
        "pygtrie",
        "psutil",
        "tqdm",
    ),
    ".pth hooks": ("__editable___mlbuild_0_1_0_finder", "certifi", "_distutils_hack"),
}
NOTES_MARKER = "<!-- notes: everything below is kept when the script rewrites this file -->"


class BenchError(RuntimeError):
    """A tool failed or did something other than expected; the benchmark stops."""


# ── configuration ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Tools:
    dvc: str
    mlbuild: str
    stage_python: str
    env: dict[str, str]
    ml_env: dict[str, str]  # env plus, with the snapshot, PYTHONPATH=<snapshot>

    def mlbuild_python(self) -> str:
        """The interpreter in the ``mlbuild`` script's shebang (for ``-X importtime``)."""
        first = Path(self.mlbuild).read_text(encoding="utf-8", errors="replace").splitlines()[0]
        return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


@dataclass
class Run:
    wall: float
    cpu: float  # user + sys of the command and every process it waited for
    output: str
    report: dict[str, Any] | None = None  # mlbuild run --json

    def ran(self) -> list[str]:
        if self.report is not None:
            return [s["name"] for s in self.report["steps"] if s["status"] == "ran"]
        return re.findall(r"Running stage '([^']+)'", self.output)

    def step_time(self) -> float:
        assert self.report is not None
        return float(sum(s["duration"] for s in self.report["steps"] if s["status"] == "ran"))


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str], *, as_json: bool = False) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise BenchError(
            f"`{shlex.join(argv)}` exited {proc.returncode} in {cwd}:\n{proc.stdout}{proc.stderr}"
        )
    report = json.loads(proc.stdout) if as_json else None
    return Run(wall, cpu, proc.stdout + proc.stderr, report)


@dataclass
class Samples:
    """Every measured value by metric id, in the order measured."""

    values: dict[str, list[float]] = field(default_factory=dict)
    ran: dict[str, list[list[str]]] = field(default_factory=dict)
    hashing: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    data_bytes: int = 0

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def add_run(self, key: str, run: Run) -> None:
        """The wall time under ``key`` and the CPU time under ``key.cpu``."""
        self.add(key, run.wall)
        self.add(f"{key}.cpu", run.cpu)

    def median(self, key: str) -> float | None:
        found = self.values.get(key)
        return statistics.median(found) if found else None


def alternate(rep: int, items: Iterable[str]) -> list[str]:
    ordered = list(items)
    return ordered if rep % 2 == 0 else ordered[::-1]


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _since(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def _ratio(dvc: float | None, ml: float | None) -> str:
    return "—" if dvc is None or ml is None or ml <= 0 else f"{dvc / ml:.1f}×"


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


Row = tuple[str, str, str, str, str, str]


Check = Callable[[float, float | None], bool]


def faster(times: float, limit: float | None = None) -> Check:
    """mlbuild at least ``times`` faster than DVC (and under ``limit`` seconds)."""

    def check(ml: float, dvc: float | None) -> bool:
        return dvc is not None and dvc / ml >= times and (limit is None or ml < limit)

    return check


def under(limit: float) -> Check:
    return lambda ml, _dvc: ml < limit


class Table:
    """The results table; each case module adds its section with ``rows(table)``."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.rows: list[Row] = []

    def timing(
        self, label: str, dvc_key: str | None, ml_key: str, target: str, check: Check | None
    ) -> None:
        dvc = self.samples.median(dvc_key) if dvc_key else None
        ml = self.samples.median(ml_key)
        verdict = "info" if check is None or ml is None else _ok(check(ml, dvc))
        self.rows.append((label, _s(dvc), _s(ml), _ratio(dvc, ml), target, verdict))

    def fact(self, label: str, dvc: str, ml: str, target: str, passed: bool | None) -> None:
        self.rows.append((label, dvc, ml, "—", target, "info" if passed is None else _ok(passed)))

    def ran(self, key: str, expected: list[str] = AFFECTED) -> tuple[str, bool]:
        runs = self.samples.ran.get(key, [])
        exact = bool(runs) and all(sorted(r) == expected for r in runs)
        counts = "/".join(str(c) for c in sorted({len(r) for r in runs}))
        return f"{counts} of {len(STAGES)}" + ("" if exact else f" ({runs})"), exact
