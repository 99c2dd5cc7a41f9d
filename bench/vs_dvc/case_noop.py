"""No-op run and status, everything cached: ``dvc repro``/``dvc status`` vs ``mlbuild run``/
``mlbuild status``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import KINDS, Table, alternate, faster

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


def measure(bench: Bench, rep: int, repos: dict[str, Path]) -> None:
    time.sleep(1.2)  # let the outputs age past mlbuild's racy window
    for kind in KINDS:  # one untimed no-op each, so both tools have settled state
        bench.expect(kind, "warm-up no-op", bench.pipeline_run(kind, repos[kind]), [])
    for kind in alternate(rep, KINDS):
        run = bench.pipeline_run(kind, repos[kind])
        bench.expect(kind, "no-op run", run, [])
        bench.samples.add_run(f"noop.{kind}", run)
        bench.record_hashing(f"noop.{kind}", run)
        bench.samples.add_run(f"status.{kind}", bench.clean_status(kind, repos[kind]))


def rows(table: Table) -> None:
    table.timing(
        "no-op run: `dvc repro` / `mlbuild run`",
        "noop.dvc",
        "noop.ml",
        "≥ 4× and < 0.3 s",
        faster(4, 0.3),
    )
    table.timing(
        "no-op run, Hydra config tree",
        "noop.dvc",
        "noop.mlh",
        "≥ 4× and < 0.3 s",
        faster(4, 0.3),
    )
    reread = [
        h["files_hashed"]
        for key in ("noop.ml", "noop.mlh")
        for h in table.samples.hashing.get(key, [])
    ]
    if reread:
        table.fact(
            "no-op run: files re-read (state table)",
            "—",
            str(max(reread)),
            "0",
            not any(reread),
        )
    table.timing(
        "no-op status: `dvc status` / `mlbuild status`", "status.dvc", "status.ml", "—", None
    )
    table.timing("no-op status, Hydra config tree", "status.dvc", "status.mlh", "—", None)
