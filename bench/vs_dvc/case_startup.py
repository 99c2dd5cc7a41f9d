"""Start-up: ``python -c pass`` (the floor), both tools' ``--help``, ``mlbuild validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import Table, alternate, timed, under

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


def measure_help(bench: Bench, rep: int) -> None:
    samples = bench.samples
    for what in alternate(rep, ["floor", "dvc", "ml"]):
        if what == "floor":
            floor = timed([bench.tools.stage_python, "-c", "pass"], bench.workdir, bench.tools.env)
            samples.add_run("floor", floor)
        elif what == "dvc":
            samples.add_run("help.dvc", bench.dvc(bench.workdir, "--help"))
        else:
            samples.add_run("help.ml", bench.mlbuild(bench.workdir, "--help"))


def measure_validate(bench: Bench, rep: int, repos: dict[str, Path]) -> None:
    for kind in alternate(rep, ["ml", "mlh"]):
        bench.samples.add_run(f"validate.{kind}", bench.mlbuild(repos[kind], "validate"))


def rows(table: Table) -> None:
    table.timing("`python -c pass` (floor)", None, "floor", "floor", None)
    table.timing("`--help`", "help.dvc", "help.ml", "mlbuild < 0.1 s", under(0.1))
    for kind, label in (("ml", "inline params"), ("mlh", "Hydra config tree")):
        table.timing(
            f"`mlbuild validate` ({label})", None, f"validate.{kind}", "< 0.25 s", under(0.25)
        )
