"""First run, everything hashed: ``dvc repro`` vs ``mlbuild run`` (and ``-j 1``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import KINDS, STAGES, Table, alternate, faster

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


def measure(bench: Bench, rep: int, repos: dict[str, Path]) -> None:
    # once more with -j 1, which hashes data/raw once
    serial = bench.fresh("ml", "ml-j1")
    for kind in alternate(rep, [*KINDS, "ml-j1"]):
        run = bench.pipeline_run(kind, repos.get(kind, serial))
        bench.expect(kind, "first run", run, list(STAGES))
        bench.samples.add_run(f"first.{kind}", run)
        bench.record_hashing(f"first.{kind}", run)
    shutil.rmtree(serial)


def rows(table: Table) -> None:
    table.timing(
        "first run, all hashed: `dvc repro` / `mlbuild run`",
        "first.dvc",
        "first.ml",
        "≥ 4×",
        faster(4),
    )
    table.timing("first run, Hydra config tree", "first.dvc", "first.mlh", "≥ 4×", faster(4))
    table.timing("first run, `mlbuild run -j 1`", "first.dvc", "first.ml-j1", "—", None)
    data = table.samples.data_bytes
    for key, label in (("first.ml", "`mlbuild run`"), ("first.ml-j1", "`mlbuild run -j 1`")):
        hashed = [h["bytes_hashed"] for h in table.samples.hashing.get(key, [])]
        if hashed:
            table.fact(
                f"first run, {label}: bytes hashed (data/raw is {data / (1 << 30):.2f} GiB)",
                "—",
                f"{max(hashed) / (1 << 30):.2f} GiB",
                "each byte once",
                max(hashed) < data * 1.05 + (1 << 20),
            )
