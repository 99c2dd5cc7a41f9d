"""One param changed: by editing the params file (``params.yaml``, ``ml.yaml``,
``conf/config.yaml``) and, for mlbuild, by a command-line override; exactly s6, s7, s8 must run.
mlbuild's overhead = wall time − the sum of the ran steps' durations; the same commands run
bare, for scale."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vs_dvc.common import AFFECTED, CHANGED, KINDS, STAGES, Table, _ratio, _s, alternate, under
from vs_dvc.repos import set_params

if TYPE_CHECKING:
    from vs_dvc.harness import Bench


def measure(bench: Bench, rep: int, repos: dict[str, Path]) -> None:
    values = dict.fromkeys(STAGES, 1)
    values[CHANGED] = 100 + rep  # a value never used before: no run-cache / action-cache hit
    for kind in alternate(rep, KINDS):
        set_params(kind, repos[kind], bench.tools.stage_python, values)
        bench.record_change(f"param.{kind}", bench.pipeline_run(kind, repos[kind]))
    # ... and by a command-line override (mlbuild only)
    for kind in alternate(rep, ["ml", "mlh"]):
        run = bench.pipeline_run(kind, repos[kind], f"{CHANGED}.n={1000 + rep}")
        bench.record_change(f"override.{kind}", run)
    # the same three commands, run bare
    bench.samples.add("bare.affected", sum(bench.run_bare(n, 100 + rep) for n in AFFECTED))
    bench.samples.add("bare.all", sum(bench.run_bare(n, 1) for n in STAGES))


def rows(table: Table) -> None:
    for kind, label in (("ml", "inline params"), ("mlh", "Hydra config tree")):
        _param_change(table, kind, label)
    _bare(table)


def _param_change(table: Table, kind: str, label: str) -> None:
    exactly = f"exactly {', '.join(AFFECTED)}"
    dvc_text, dvc_exact = table.ran("param.dvc")
    ml_text, ml_exact = table.ran(f"param.{kind}")
    table.fact(
        f"param edited ({label}): stages that ran",
        dvc_text,
        ml_text,
        exactly,
        ml_exact and dvc_exact,
    )
    table.timing(f"param edited ({label}): wall", "param.dvc", f"param.{kind}", "—", None)
    table.timing(
        f"param edited ({label}): mlbuild overhead = wall − Σ step durations",
        None,
        f"param.{kind}.overhead",
        "< 0.2 s",
        under(0.2),
    )
    text, exact = table.ran(f"override.{kind}")
    table.fact(f"`mlbuild run {CHANGED}.n=V` ({label}): stages that ran", "—", text, exactly, exact)
    table.timing(
        f"`mlbuild run {CHANGED}.n=V` ({label}): overhead",
        None,
        f"override.{kind}.overhead",
        "< 0.2 s",
        under(0.2),
    )


def _bare(table: Table) -> None:
    med = table.samples.median
    bare, dvc, ml = med("bare.affected"), med("param.dvc"), med("param.ml")
    if bare is not None and dvc is not None and ml is not None:
        table.rows.append(
            (
                f"param edited: wall − the 3 commands run bare ({_s(bare)})",
                _s(dvc - bare),
                _s(ml - bare),
                _ratio(dvc - bare, ml - bare),
                "—",
                "info",
            )
        )
    table.fact("the 8 commands run bare, one after another", "—", _s(med("bare.all")), "—", None)
