"""The report: the results table in case order, CPU times, import costs, all samples, and
bench/RESULTS.md (everything below its notes marker kept)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
from pathlib import Path

from vs_dvc import (
    case_dvc_data,
    case_first_run,
    case_imports,
    case_noop,
    case_param_change,
    case_startup,
)
from vs_dvc.case_imports import Probe, render_import_costs
from vs_dvc.common import DD, NOTES_MARKER, Row, Samples, Table, Tools, _ratio, _s


def build_rows(samples: Samples, probes: list[Probe]) -> list[Row]:
    table = Table(samples)
    for case in (case_startup, case_first_run, case_noop, case_param_change, case_dvc_data):
        case.rows(table)
    case_imports.rows(table, probes)
    return table.rows


def render_table(rows: list[Row]) -> str:
    header = ("measurement (median)", "DVC", "mlbuild", "DVC / mlbuild", "target", "result")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


CPU_ROWS = [
    ("`python -c pass` (floor)", None, "floor"),
    ("`--help`", "help.dvc", "help.ml"),
    ("`mlbuild validate`", None, "validate.ml"),
    ("first run", "first.dvc", "first.ml"),
    ("no-op run", "noop.dvc", "noop.ml"),
    ("no-op run, Hydra config tree", "noop.dvc", "noop.mlh"),
    ("no-op status", "status.dvc", "status.ml"),
    ("param edited, inline (3 stages run)", "param.dvc", "param.ml"),
    ("param edited, Hydra config tree (3 stages run)", "param.dvc", "param.mlh"),
    ("DVC-tracked data: first run", f"first.{DD}.dvc", f"first.{DD}.ml"),
    ("DVC-tracked data: no-op run", f"noop.{DD}.dvc", f"noop.{DD}.ml"),
    ("DVC-tracked data: no-op `dvc status` / `mlbuild run`", f"status.{DD}.dvc", f"noop.{DD}.ml"),
    ("DVC-tracked data: a file changed (3 stages run)", f"change.{DD}.dvc", f"change.{DD}.ml"),
]


def render_cpu(samples: Samples) -> str:
    """Medians of CPU time (user + sys, children included): less sensitive to a busy machine."""
    lines = ["| CPU time (median) | DVC | mlbuild | DVC / mlbuild |", "|---|---|---|---|"]
    for label, dvc_key, ml_key in CPU_ROWS:
        dvc = samples.median(f"{dvc_key}.cpu") if dvc_key else None
        ml = samples.median(f"{ml_key}.cpu")
        if ml is None:
            continue
        lines.append(f"| {label} | {_s(dvc)} | {_s(ml)} | {_ratio(dvc, ml)} |")
    return "\n".join(lines)


def render_samples(samples: Samples) -> str:
    lines = ["| metric | median | min | max | samples (s) |", "|---|---|---|---|---|"]
    for key, values in samples.values.items():
        shown = ", ".join(f"{v:.3f}" for v in values)
        lines.append(
            f"| {key} | {statistics.median(values):.3f} | {min(values):.3f} | "
            f"{max(values):.3f} | {shown} |"
        )
    return "\n".join(lines)


def machine(tools: Tools) -> list[str]:
    def first_line(argv: list[str], env: dict[str, str] | None = None) -> str:
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, check=False, env=env or tools.env
            )
        except OSError as exc:
            return f"unavailable ({exc.strerror})"
        return (proc.stdout or proc.stderr).strip().splitlines()[0]

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kib = int(handle.readline().split()[1])
            mem = f", {kib / (1 << 20):.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs (nproc), "
        f"{cpu}{mem}; load average before the run: {load}",
        f"- python (stages, `python -c pass`): {first_line([tools.stage_python, '--version'])}",
        f"- mlbuild: {first_line([tools.mlbuild, '--version'], tools.ml_env)} ({tools.mlbuild})",
        f"- dvc: {first_line([tools.dvc, '--version'])} ({tools.dvc})",
    ]


def render_markdown(
    args: argparse.Namespace,
    samples: Samples,
    rows: list[Row],
    probes: list[Probe],
    header: list[str],
    command: str,
) -> str:
    size = args.files * args.file_size_mb
    first = samples.hashing.get("first.ml", [{}])[-1]
    noop = samples.hashing.get("noop.ml", [{}])[-1]
    dd_noop = samples.hashing.get(f"noop.{DD}.ml", [{}])[-1]
    return "\n".join(
        [
            "# mlbuild vs DVC",
            "",
            f"8-stage pipeline over {args.files} files × {args.file_size_mb:g} MiB "
            f"({size / 1024:.2f} GiB) in `data/raw/`; medians of {args.reps} repetitions, "
            "the tools alternating. Generated by `bench/bench_vs_dvc.py`.",
            "",
            *(
                [
                    'Rows "DVC-tracked data/raw": one git + DVC repo holding both pipelines, '
                    "where `dvc add data/raw` wrote `data/raw.dvc`; `dvc.yaml`'s stages depend on "
                    "`data/raw`, `ml.yaml` declares `data: {raw: {path: data/raw}}` and its steps "
                    "depend on `data:raw` (outputs in `out/` and `mlout/`). Its first "
                    "`mlbuild run` asks DVC whether the workspace matches `data/raw.dvc`; later "
                    "runs compare the files' stats with `.mlbuild/data/raw.json`.",
                    "",
                ]
                if args.dvc_data
                else []
            ),
            *header,
            "",
            "Command:",
            "",
            "```",
            command,
            "```",
            "",
            render_table(rows),
            "",
            f"mlbuild hashing, first run: {first}; no-op run: {noop}; no-op run over the "
            f"DVC-tracked data: {dd_noop}.",
            "",
            "CPU time (user + sys of the command and the processes it waited for) does not count "
            "time spent waiting for a CPU, so it moves less than wall time when the machine is "
            "busy; mlbuild's includes its hashing threads, which run in parallel:",
            "",
            render_cpu(samples),
            "",
            "Where mlbuild's start-up goes: milliseconds spent executing each group's modules "
            "at import (self time from `python -X importtime`, which adds its own overhead; one "
            "sample each, after the timed repetitions):",
            "",
            render_import_costs(probes),
            "",
            "<details><summary>All samples</summary>",
            "",
            render_samples(samples),
            "",
            "</details>",
            "",
        ]
    )


def write_results(path: Path, text: str) -> None:
    notes = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER) + len(NOTES_MARKER) :]
    path.write_text(text + "\n" + NOTES_MARKER + (notes or "\n"), encoding="utf-8")


# ── main ─────────────────────────────────────────────────────────────────────────────────────
