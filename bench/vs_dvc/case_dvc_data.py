"""DVC-tracked data: one repository where ``dvc add data/raw`` wrote ``data/raw.dvc``, holding
both pipelines; first run, no-op run and status, and both pipelines after one data file is
replaced and ``dvc add``-ed (exactly the readers of ``data:raw`` must re-run)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import DATA_READERS, DD, DD_OUT, STAGES, Table, alternate, faster
from vs_dvc.repos import change_data_file

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


def measure(bench: Bench, rep: int) -> Path:
    """Both tools on one repo whose data/raw is tracked by `dvc add`; returns the repo."""
    samples = bench.samples
    repo = bench.fresh(DD)
    # DVC keeps its hash state per repo path: `dvc status` here leaves it as `dvc add` would
    # have in the user's repo (otherwise whichever tool asks DVC first hashes the 1 GiB).
    bench.dvc(repo, "status")
    for tool in alternate(rep, DD_OUT):
        run = bench.pipeline_run(tool, repo)
        bench.expect(f"{DD} {tool}", "first run", run, list(STAGES))
        samples.add_run(f"first.{DD}.{tool}", run)
    time.sleep(1.2)
    for tool in DD_OUT:
        bench.expect(f"{DD} {tool}", "warm-up no-op", bench.pipeline_run(tool, repo), [])

    for tool in alternate(rep, DD_OUT):
        run = bench.pipeline_run(tool, repo)
        bench.expect(f"{DD} {tool}", "no-op run", run, [])
        samples.add_run(f"noop.{DD}.{tool}", run)
        bench.record_hashing(f"noop.{DD}.{tool}", run)
        samples.add_run(f"status.{DD}.{tool}", bench.clean_status(tool, repo))

    # one data file replaced and recorded with `dvc add`: the readers of data/raw re-run
    change_data_file(repo, bench.args.files)
    bench.dvc(repo, "add", "-q", "data/raw")
    for tool in alternate(rep, DD_OUT):
        # no "overhead" here: the three readers run in parallel, and a step's duration
        # includes verifying the dataset through DVC (see the notes in RESULTS.md)
        run = bench.pipeline_run(tool, repo)
        samples.ran.setdefault(f"change.{DD}.{tool}", []).append(run.ran())
        samples.add_run(f"change.{DD}.{tool}", run)
    return repo


def rows(table: Table) -> None:
    """The repo where data/raw is tracked by `dvc add` and ml.yaml reads it as `data:raw`."""
    if f"noop.{DD}.ml" not in table.samples.values:
        return
    label = "DVC-tracked data/raw"
    table.timing(
        f"{label}: first run, `dvc repro` / `mlbuild run` (verifies the dataset through DVC)",
        f"first.{DD}.dvc",
        f"first.{DD}.ml",
        "—",
        None,
    )
    table.timing(
        f"{label}: no-op run: `dvc repro` / `mlbuild run`",
        f"noop.{DD}.dvc",
        f"noop.{DD}.ml",
        "≥ 4× and < 0.3 s",
        faster(4, 0.3),
    )
    table.timing(
        f"{label}: no-op `dvc status` / `mlbuild run`",
        f"status.{DD}.dvc",
        f"noop.{DD}.ml",
        "≥ 4× and < 0.3 s",
        faster(4, 0.3),
    )
    table.timing(
        f"{label}: no-op status: `dvc status` / `mlbuild status`",
        f"status.{DD}.dvc",
        f"status.{DD}.ml",
        "—",
        None,
    )
    reread = [h["files_hashed"] for h in table.samples.hashing.get(f"noop.{DD}.ml", [])]
    table.fact(
        f"{label}: no-op run: files re-read",
        "—",
        str(max(reread, default=0)),
        "0",
        not any(reread),
    )
    readers = ", ".join(DATA_READERS)
    dvc_text, dvc_exact = table.ran(f"change.{DD}.dvc", DATA_READERS)
    ml_text, ml_exact = table.ran(f"change.{DD}.ml", DATA_READERS)
    table.fact(
        f"{label}: one file replaced + `dvc add data/raw`: stages that ran",
        dvc_text,
        ml_text,
        f"exactly {readers} (the readers of data:raw)",
        ml_exact and dvc_exact,
    )
    table.timing(
        f"{label}: one file replaced + `dvc add data/raw`: wall",
        f"change.{DD}.dvc",
        f"change.{DD}.ml",
        "—",
        None,
    )
