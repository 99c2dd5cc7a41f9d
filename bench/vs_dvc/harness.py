"""The harness: the repositories set up once, the two tools' commands, what a run must have
done, and one repetition — fresh copies, then each case in the order its state needs."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from vs_dvc import case_dvc_data, case_first_run, case_noop, case_param_change, case_startup
from vs_dvc.common import (
    DD,
    KINDS,
    STAGES,
    BenchError,
    Run,
    Samples,
    Tools,
    _since,
    log,
    timed,
)
from vs_dvc.repos import fresh_copy, generate_data, make_template, stage_cmd


class Bench:
    def __init__(self, args: argparse.Namespace, tools: Tools, workdir: Path) -> None:
        self.args = args
        self.tools = tools
        self.workdir = workdir
        self.samples = Samples()
        self.templates: dict[str, Path] = {}
        self.last: dict[str, Path] = {}
        self.copies = 0

    # setup

    def setup(self) -> None:
        data = self.workdir / "data-src"
        size = int(self.args.file_size_mb * (1 << 20))
        started = time.perf_counter()
        generate_data(data, self.args.files, size)
        self.samples.data_bytes = self.args.files * size
        total = self.args.files * size / (1 << 30)
        log(f"generated {self.args.files} files, {total:.2f} GiB in {_since(started)}")
        site_cache = self.workdir / "dvc-site-cache"
        for kind in (*KINDS, DD) if self.args.dvc_data else KINDS:
            started = time.perf_counter()
            self.templates[kind] = make_template(kind, self.workdir, data, self.tools, site_cache)
            log(f"template {kind} in {_since(started)}")
        self._bare_setup()

    def _bare_setup(self) -> None:
        """A scratch copy where the stages' commands run bare, to know their own cost."""
        self.bare = fresh_copy(self.templates["ml"], self.workdir / "bare")
        for name in STAGES:
            self.run_bare(name, 1)

    def run_bare(self, name: str, n: int) -> float:
        cmd = stage_cmd(self.tools.stage_python, name, str(n))
        return timed(["/bin/sh", "-c", cmd], self.bare, self.tools.env).wall

    # commands

    def dvc(self, repo: Path, *argv: str) -> Run:
        return timed([self.tools.dvc, *argv], repo, self.tools.env)

    def mlbuild(self, repo: Path, *argv: str) -> Run:
        as_json = "--json" in argv
        return timed([self.tools.mlbuild, *argv], repo, self.tools.ml_env, as_json=as_json)

    def pipeline_run(self, kind: str, repo: Path, *overrides: str) -> Run:
        if kind == "dvc":
            return self.dvc(repo, "repro")
        jobs = ["-j", "1"] if kind == "ml-j1" else []
        return self.mlbuild(repo, "run", "--json", *jobs, *overrides)

    def fresh(self, kind: str, suffix: str = "") -> Path:
        """A fresh copy of ``kind``'s template for this repetition."""
        dest = self.workdir / f"copy{self.copies}-{suffix or kind}"
        return fresh_copy(self.templates[kind], dest)

    # one repetition

    def rep(self, rep: int, *, record: bool = True) -> None:
        kept = self.samples
        if not record:
            self.samples = Samples()
        try:
            self._rep(rep)
        finally:
            self.samples = kept

    def _rep(self, rep: int) -> None:
        case_startup.measure_help(self, rep)
        self.copies += 1
        repos = {kind: self.fresh(kind) for kind in KINDS}
        case_first_run.measure(self, rep, repos)
        case_noop.measure(self, rep, repos)
        case_startup.measure_validate(self, rep, repos)
        case_param_change.measure(self, rep, repos)
        if self.args.dvc_data:
            repos[DD] = case_dvc_data.measure(self, rep)
        for kind, repo in repos.items():
            old = self.last.get(kind)
            if old is not None:
                shutil.rmtree(old)
            self.last[kind] = repo

    # what a run must have done

    def clean_status(self, tool: str, repo: Path) -> Run:
        """``dvc status`` / ``mlbuild status``, which must report nothing to do."""
        if tool == "dvc":
            status = self.dvc(repo, "status")
            if "up to date" not in status.output:
                raise BenchError(f"dvc status is not clean in {repo}:\n{status.output}")
        else:
            status = self.mlbuild(repo, "status")
            if any(word in status.output for word in ("changed", "never")):
                raise BenchError(f"mlbuild status is not clean in {repo}:\n{status.output}")
        return status

    def record_change(self, key: str, run: Run) -> None:
        ran = run.ran()
        self.samples.ran.setdefault(key, []).append(ran)
        self.samples.add_run(key, run)
        if run.report is not None:
            self.samples.add(f"{key}.steps", run.step_time())
            self.samples.add(f"{key}.overhead", run.wall - run.step_time())

    def record_hashing(self, key: str, run: Run) -> None:
        if run.report is not None:
            self.samples.hashing.setdefault(key, []).append(run.report["hashing"])

    def expect(self, kind: str, what: str, run: Run, ran: list[str]) -> None:
        if sorted(run.ran()) != sorted(ran):
            raise BenchError(
                f"{kind} {what}: expected {ran or 'nothing'} to run, got {run.ran()}:\n"
                f"{run.output[-3000:]}"
            )
