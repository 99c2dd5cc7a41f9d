#!/usr/bin/env python3
"""Benchmark mlbuild against DVC on one generated 8-stage pipeline, side by side.

The script generates ``--files`` files of ``--file-size-mb`` MiB of random bytes under
``data/raw/`` and the same pipeline in these repositories:

* ``dvc``: a git + DVC repository with ``dvc.yaml`` and ``params.yaml``;
* ``ml``:  ``ml.yaml`` with an inline ``params:`` mapping;
* ``mlh``: ``ml.yaml`` with ``params: {config_dir: conf, config_name: config}`` (a Hydra tree);
* ``dd``:  DVC-tracked data (unless ``--no-dvc-data``): one git + DVC repo with both pipelines,
  where ``dvc add data/raw`` wrote ``data/raw.dvc``; ``ml.yaml`` declares ``data: {raw: {path:
  data/raw}}`` and its steps depend on ``data:raw`` (outputs in ``mlout/``, DVC's in ``out/``).

Every repetition starts from fresh copies of the repositories (``data/raw`` is hard-linked,
so each copy has its own state/cache but no tool gets a warm hash for free) and measures, with
the tools alternating (and the order flipped on every other repetition):

* start-up: ``python -c pass`` (the floor), ``--help`` of both tools, ``mlbuild validate``;
* first run (everything hashed): ``dvc repro`` vs ``mlbuild run``;
* no-op run and status (all cached): ``dvc repro``/``dvc status`` vs ``mlbuild run``/``status``;
* one param changed by editing the params file (``params.yaml``, ``ml.yaml``, ``conf/config.yaml``)
  and, for mlbuild, by a command-line override: which stages ran, wall time, and mlbuild's own
  overhead = wall time - the sum of the ran steps' durations reported by ``mlbuild run --json``;
* on ``dd``: first run, no-op ``dvc repro``/``dvc status`` vs ``mlbuild run``/``status``, and both
  pipelines after one data file is replaced and ``dvc add``-ed (exactly s1, s2, s4 must re-run).

The pipeline (each stage reads its own param ``sN.n``; changing ``s6.n`` re-runs s6, s7, s8)::

    data/raw ─┬─ s1 ─┐
              ├─ s2 ─┴─ s3 ─┐
              └─ s4 ────────┴─ s5 ── s6 ── s7 ─┬─ s8
                 └─────────────────────────────┘

Usage (see bench/README.md)::

    python bench/bench_vs_dvc.py --dvc /tmp/dvcvenv/bin/dvc --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
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

STAGE_SCRIPT = '''\
"""One benchmark stage: hash its name, its param and (a sample of) its inputs into its output."""

import hashlib
import os
import sys

name, n, out, *inputs = sys.argv[1:]
digest = hashlib.blake2b(f"{name}:{n}".encode())
for path in inputs:
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        digest.update(str(len(names)).encode())
        for entry in names[:: max(1, len(names) // 8)]:  # the first 4 KiB of ~8 files
            with open(os.path.join(path, entry), "rb") as handle:
                digest.update(handle.read(4096))
    else:
        with open(path, "rb") as handle:
            digest.update(handle.read())
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as handle:
    handle.write(digest.hexdigest() + "\\n")
print(f"{name}: n={n} -> {out}")
'''


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    default_mlbuild = Path(sys.executable).with_name("mlbuild")
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--dvc", default=shutil.which("dvc") or "dvc", help="the dvc binary")
    parser.add_argument("--mlbuild", default=str(default_mlbuild), help="the mlbuild binary")
    parser.add_argument(
        "--stage-python",
        default=sys.executable,
        help="the interpreter the stages run with (same for both tools)",
    )
    parser.add_argument("--files", type=int, default=1000, help="files under data/raw")
    parser.add_argument("--file-size-mb", type=float, default=1.0, help="MiB per file")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; medians are reported")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed repetitions first (fill bytecode caches)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to build the repos (default: a tmp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--results", type=Path, default=None, help="write the results as Markdown to this file"
    )
    parser.add_argument("--json", type=Path, default=None, help="also dump the raw samples here")
    parser.add_argument(
        "--no-dvc-data",
        dest="dvc_data",
        action="store_false",
        help="skip the repo where data/raw is tracked by `dvc add` and read as an ml.yaml dataset",
    )
    parser.add_argument(
        "--no-snapshot",
        dest="snapshot",
        action="store_false",
        help="run mlbuild from its installed source instead of a copy taken at the start (the "
        "copy keeps one version of the code for the whole run while the tree is being edited)",
    )
    return parser.parse_args(argv)


# ── generating the repositories ──────────────────────────────────────────────────────────────


def stage_inputs(name: str, out: str = "out") -> list[str]:
    """The stage's inputs, with the other stages' outputs under ``out/``."""
    return [f"{out}/{dep[4:]}" if dep.startswith("out/") else dep for dep in STAGES[name]]


def stage_cmd(python: str, name: str, n: str, out: str = "out") -> str:
    deps = " ".join(stage_inputs(name, out))
    return f"{shlex.quote(python)} -S stage.py {name} {n} {out}/{name}.txt {deps}"


def params_yaml(values: dict[str, int]) -> str:
    return "".join(f"{name}:\n  n: {n}\n" for name, n in values.items())


def dvc_yaml(python: str) -> str:
    lines = ["stages:"]
    for name, deps in STAGES.items():
        lines += [
            f"  {name}:",
            f"    cmd: {stage_cmd(python, name, '${' + name + '.n}')}",
            f"    deps: [stage.py, {', '.join(deps)}]",
            f"    params: [{name}.n]",
            f"    outs: [out/{name}.txt]",
        ]
    return "\n".join(lines) + "\n"


def ml_yaml(python: str, values: dict[str, int] | None, *, dataset: bool = False) -> str:
    """``values`` inline, or ``None`` for the Hydra config tree in ``conf/``. With ``dataset``,
    ``data/raw`` is the DVC-tracked dataset ``raw``, read by name, and outputs go to ``mlout/``."""
    if values is None:
        params = "params: {config_dir: conf, config_name: config}"
    else:
        inline = ", ".join(f"{name}: {{n: {n}}}" for name, n in values.items())
        params = f"params: {{{inline}}}"
    lines = ["schema_version: 1", "name: bench", params]
    if dataset:
        lines += ["data:", "  raw: {path: data/raw}"]
    out = DD_OUT["ml"] if dataset else "out"
    lines.append("steps:")
    for name in STAGES:
        deps = stage_inputs(name, out)
        if dataset:
            deps = ["data:raw" if dep == "data/raw" else dep for dep in deps]
        lines += [
            f"  {name}:",
            f"    cmd: {stage_cmd(python, name, '${params.' + name + '.n}', out)}",
            f"    deps: [stage.py, {', '.join(deps)}]",
            f"    params: [{name}.n]",
            f"    outs: [{out}/{name}.txt]",
        ]
    return "\n".join(lines) + "\n"


def set_params(kind: str, repo: Path, python: str, values: dict[str, int]) -> None:
    """Edit the params file of a repository of ``kind`` (what a user would do)."""
    if kind == "dvc":
        (repo / "params.yaml").write_text(params_yaml(values), encoding="utf-8")
    elif kind == "ml":
        (repo / "ml.yaml").write_text(ml_yaml(python, values), encoding="utf-8")
    else:
        (repo / "conf" / "config.yaml").write_text(params_yaml(values), encoding="utf-8")


def generate_data(target: Path, files: int, size: int) -> None:
    target.mkdir(parents=True)
    past = time.time() - 3600  # well outside mlbuild's 1 s racy window
    for index in range(files):
        path = target / f"f{index:05d}.bin"
        path.write_bytes(os.urandom(size))
        os.utime(path, (past, past))


def changed_file_index(files: int) -> int:
    """A file of data/raw the stages do not sample (see STAGE_SCRIPT), so only the stages that
    read data/raw re-run when it changes: their outputs, hence the downstream stages, stay."""
    if files < 16:
        raise BenchError("the DVC-data variant needs --files >= 16 (or use --no-dvc-data)")
    return 1


def change_data_file(repo: Path, files: int) -> None:
    """Give one data file new bytes (a new file: the old one is hard-linked to the template)."""
    path = repo / "data" / "raw" / f"f{changed_file_index(files):05d}.bin"
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(os.urandom(path.stat().st_size))
    tmp.replace(path)


def run_quiet(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def make_template(kind: str, root: Path, data: Path, tools: Tools, site_cache: Path) -> Path:
    """A committed repository of ``kind``: ``dvc``, ``ml``, ``mlh`` or ``dd`` (DVC-tracked data,
    both tools' pipelines; ``dvc add data/raw`` has run)."""
    repo = root / f"template-{kind}"
    (repo / "data").mkdir(parents=True)
    shutil.copytree(data, repo / "data" / "raw", copy_function=os.link)
    (repo / "stage.py").write_text(STAGE_SCRIPT, encoding="utf-8")
    values = dict.fromkeys(STAGES, 1)
    # In the DVC-data repo, `dvc add` writes data/.gitignore and data/raw.dvc is committed.
    ignored = "/.mlbuild/\n" if kind == DD else "/data/\n"
    (repo / ".gitignore").write_text(ignored, encoding="utf-8")
    if kind in ("dvc", DD):
        (repo / "dvc.yaml").write_text(dvc_yaml(tools.stage_python), encoding="utf-8")
        set_params("dvc", repo, tools.stage_python, values)
    if kind == DD:
        ml = ml_yaml(tools.stage_python, values, dataset=True)
        (repo / "ml.yaml").write_text(ml, encoding="utf-8")
    elif kind == "ml":
        (repo / "ml.yaml").write_text(ml_yaml(tools.stage_python, values), encoding="utf-8")
    else:
        (repo / "ml.yaml").write_text(ml_yaml(tools.stage_python, None), encoding="utf-8")
        (repo / "conf").mkdir()
        set_params(kind, repo, tools.stage_python, values)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    run_quiet([*git, "init", "-q"], repo)
    if kind in ("dvc", DD):
        run_quiet([tools.dvc, "init", "-q"], repo, tools.env)
        for key, value in (
            ("core.analytics", "false"),
            ("core.check_update", "false"),
            ("core.site_cache_dir", str(site_cache)),
        ):
            run_quiet([tools.dvc, "config", key, value], repo, tools.env)
    if kind == DD:  # DVC's default cache type: the workspace files stay, the cache gets copies
        run_quiet([tools.dvc, "add", "-q", "data/raw"], repo, tools.env)
    run_quiet([*git, "add", "-A"], repo)
    run_quiet([*git, "commit", "-q", "-m", "benchmark pipeline"], repo)
    past = time.time() - 3600
    for path in repo.rglob("*"):
        if path.is_file() and "raw" not in path.parts:
            os.utime(path, (past, past))
    return repo


def snapshot_mlbuild(python: str, env: dict[str, str], dest: Path) -> tuple[Path, str]:
    """Copy the installed ``mlbuild`` package to ``dest/mlbuild``; return its source and a hash."""
    proc = subprocess.run(
        [python, "-c", "import mlbuild, os; print(os.path.dirname(mlbuild.__file__))"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"cannot import mlbuild with {python}:\n{proc.stderr}")
    source = Path(proc.stdout.strip().splitlines()[-1])
    shutil.copytree(source, dest / "mlbuild", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted((dest / "mlbuild").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(dest).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return source, digest.hexdigest()[:12]


def fresh_copy(template: Path, dest: Path) -> Path:
    """Copy a template; the data files and DVC's cache are hard-linked (same bytes, separate tool
    state). Change a data file in a copy by replacing it, never by writing into it."""
    raw, dvc_cache = template / "data" / "raw", template / ".dvc" / "cache"

    def copy(src: str, dst: str) -> None:
        if Path(src).parent == raw or Path(src).is_relative_to(dvc_cache):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(template, dest, copy_function=copy, symlinks=True)
    return dest


# ── measuring ────────────────────────────────────────────────────────────────────────────────


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
            self._bare(name, 1)

    def _bare(self, name: str, n: int) -> float:
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
        env, samples = self.tools.env, self.samples
        for what in alternate(rep, ["floor", "dvc", "ml"]):
            if what == "floor":
                samples.add_run(
                    "floor", timed([self.tools.stage_python, "-c", "pass"], self.workdir, env)
                )
            elif what == "dvc":
                samples.add_run("help.dvc", self.dvc(self.workdir, "--help"))
            else:
                samples.add_run("help.ml", self.mlbuild(self.workdir, "--help"))

        self.copies += 1
        repos = {
            kind: fresh_copy(self.templates[kind], self.workdir / f"copy{self.copies}-{kind}")
            for kind in KINDS
        }
        # first run: everything hashed (and once more with -j 1, which hashes data/raw once)
        serial = fresh_copy(self.templates["ml"], self.workdir / f"copy{self.copies}-ml-j1")
        for kind in alternate(rep, [*KINDS, "ml-j1"]):
            run = self.pipeline_run(kind, repos.get(kind, serial))
            self._expect(kind, "first run", run, list(STAGES))
            samples.add_run(f"first.{kind}", run)
            if run.report is not None:
                samples.hashing.setdefault(f"first.{kind}", []).append(run.report["hashing"])
        shutil.rmtree(serial)
        time.sleep(1.2)  # let the outputs age past mlbuild's racy window
        for kind in KINDS:  # one untimed no-op each, so both tools have settled state
            self._expect(kind, "warm-up no-op", self.pipeline_run(kind, repos[kind]), [])

        # no-op run and status
        for kind in alternate(rep, KINDS):
            run = self.pipeline_run(kind, repos[kind])
            self._expect(kind, "no-op run", run, [])
            samples.add_run(f"noop.{kind}", run)
            if run.report is not None:
                samples.hashing.setdefault(f"noop.{kind}", []).append(run.report["hashing"])
            samples.add_run(f"status.{kind}", self.clean_status(kind, repos[kind]))
        for kind in alternate(rep, ["ml", "mlh"]):
            samples.add_run(f"validate.{kind}", self.mlbuild(repos[kind], "validate"))

        # one param changed, by editing the params file
        values = dict.fromkeys(STAGES, 1)
        values[CHANGED] = 100 + rep  # a value never used before: no run-cache / action-cache hit
        for kind in alternate(rep, KINDS):
            set_params(kind, repos[kind], self.tools.stage_python, values)
            run = self.pipeline_run(kind, repos[kind])
            self._record_change(f"param.{kind}", kind, run)
        # ... and by a command-line override (mlbuild only)
        for kind in alternate(rep, ["ml", "mlh"]):
            run = self.pipeline_run(kind, repos[kind], f"{CHANGED}.n={1000 + rep}")
            self._record_change(f"override.{kind}", kind, run)
        # the same three commands, run bare
        samples.add("bare.affected", sum(self._bare(n, 100 + rep) for n in AFFECTED))
        samples.add("bare.all", sum(self._bare(n, 1) for n in STAGES))

        if self.args.dvc_data:
            repos[DD] = self._dvc_data_rep(rep)
        for kind, repo in repos.items():
            old = self.last.get(kind)
            if old is not None:
                shutil.rmtree(old)
            self.last[kind] = repo

    def _dvc_data_rep(self, rep: int) -> Path:
        """Both tools on one repo whose data/raw is tracked by `dvc add`; returns the repo."""
        samples = self.samples
        repo = fresh_copy(self.templates[DD], self.workdir / f"copy{self.copies}-{DD}")
        # DVC keeps its hash state per repo path: `dvc status` here leaves it as `dvc add` would
        # have in the user's repo (otherwise whichever tool asks DVC first hashes the 1 GiB).
        self.dvc(repo, "status")
        for tool in alternate(rep, DD_OUT):
            run = self.pipeline_run(tool, repo)
            self._expect(f"{DD} {tool}", "first run", run, list(STAGES))
            samples.add_run(f"first.{DD}.{tool}", run)
        time.sleep(1.2)
        for tool in DD_OUT:
            self._expect(f"{DD} {tool}", "warm-up no-op", self.pipeline_run(tool, repo), [])

        for tool in alternate(rep, DD_OUT):
            run = self.pipeline_run(tool, repo)
            self._expect(f"{DD} {tool}", "no-op run", run, [])
            samples.add_run(f"noop.{DD}.{tool}", run)
            if run.report is not None:
                samples.hashing.setdefault(f"noop.{DD}.{tool}", []).append(run.report["hashing"])
            samples.add_run(f"status.{DD}.{tool}", self.clean_status(tool, repo))

        # one data file replaced and recorded with `dvc add`: the readers of data/raw re-run
        change_data_file(repo, self.args.files)
        self.dvc(repo, "add", "-q", "data/raw")
        for tool in alternate(rep, DD_OUT):
            # no "overhead" here: the three readers run in parallel, and a step's duration
            # includes verifying the dataset through DVC (see the notes in RESULTS.md)
            run = self.pipeline_run(tool, repo)
            samples.ran.setdefault(f"change.{DD}.{tool}", []).append(run.ran())
            samples.add_run(f"change.{DD}.{tool}", run)
        return repo

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

    def _record_change(self, key: str, kind: str, run: Run) -> None:
        ran = run.ran()
        self.samples.ran.setdefault(key, []).append(ran)
        self.samples.add_run(key, run)
        if run.report is not None:
            self.samples.add(f"{key}.steps", run.step_time())
            self.samples.add(f"{key}.overhead", run.wall - run.step_time())

    def _expect(self, kind: str, what: str, run: Run, ran: list[str]) -> None:
        if sorted(run.ran()) != sorted(ran):
            raise BenchError(
                f"{kind} {what}: expected {ran or 'nothing'} to run, got {run.ran()}:\n"
                f"{run.output[-3000:]}"
            )

    # import checks (not timed)

    def _probe(self, python: str, probe: Probe) -> None:
        start = time.perf_counter()
        proc = subprocess.run(
            [python, "-X", "importtime", self.tools.mlbuild, *probe.argv],
            cwd=probe.cwd,
            env=self.tools.ml_env,
            capture_output=True,
            text=True,
            check=False,
        )
        probe.wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"{probe.label} failed:\n{proc.stderr[-3000:]}")
        probe.parse(proc.stderr)

    def imports(self) -> list[Probe]:
        """What each command imports, from ``python -X importtime`` (one untimed sample)."""
        python = self.tools.mlbuild_python()
        ml, mlh, dd = self.last["ml"], self.last["mlh"], self.last.get(DD)
        for repo in (ml, mlh):
            self.mlbuild(repo, "run")  # settle after the override runs
        probes = [
            Probe("`mlbuild --help`", self.workdir, ["--help"], "heavy"),
            Probe("`mlbuild validate`", ml, ["validate"], "heavy"),
            Probe("`mlbuild status`", ml, ["status"], "heavy"),
            Probe("no-op `mlbuild run`", ml, ["run"], "light"),
            Probe("no-op `mlbuild run` (Hydra config tree)", mlh, ["run"], "light"),
            Probe(f"`mlbuild run {CHANGED}.n=V`", ml, ["run", f"{CHANGED}.n=9999"], ""),
        ]
        if dd is not None:
            time.sleep(1.2)
            self.mlbuild(dd, "run")  # settle after the data change
            probes.append(Probe("no-op `mlbuild run` (DVC-tracked data)", dd, ["run"], "light"))
        for probe in probes:
            self._probe(python, probe)
        if dd is not None:  # what verifying a new version of the dataset costs
            change_data_file(dd, self.args.files)
            self.dvc(dd, "add", "-q", "data/raw")
            probe = Probe("`mlbuild run` after `dvc add` of a changed file", dd, ["run"], "")
            self._probe(python, probe)
            probes.append(probe)
        return probes


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


# ── report ───────────────────────────────────────────────────────────────────────────────────


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


class Rows:
    """The results table, one section per kind of measurement."""

    def __init__(self, samples: Samples, probes: list[Probe]) -> None:
        self.samples = samples
        self.probes = probes
        self.rows: list[Row] = []

    def build(self) -> list[Row]:
        self.startup()
        self.first_run()
        self.no_op()
        for kind, label in (("ml", "inline params"), ("mlh", "Hydra config tree")):
            self.param_change(kind, label)
        self.bare()
        self.dvc_data()
        self.import_checks()
        return self.rows

    def timing(
        self, label: str, dvc_key: str | None, ml_key: str, target: str, check: Check | None
    ) -> None:
        dvc = self.samples.median(dvc_key) if dvc_key else None
        ml = self.samples.median(ml_key)
        verdict = "info" if check is None or ml is None else _ok(check(ml, dvc))
        self.rows.append((label, _s(dvc), _s(ml), _ratio(dvc, ml), target, verdict))

    def fact(self, label: str, dvc: str, ml: str, target: str, passed: bool | None) -> None:
        self.rows.append((label, dvc, ml, "—", target, "info" if passed is None else _ok(passed)))

    def startup(self) -> None:
        self.timing("`python -c pass` (floor)", None, "floor", "floor", None)
        self.timing("`--help`", "help.dvc", "help.ml", "mlbuild < 0.1 s", under(0.1))
        for kind, label in (("ml", "inline params"), ("mlh", "Hydra config tree")):
            self.timing(
                f"`mlbuild validate` ({label})", None, f"validate.{kind}", "< 0.25 s", under(0.25)
            )

    def first_run(self) -> None:
        self.timing(
            "first run, all hashed: `dvc repro` / `mlbuild run`",
            "first.dvc",
            "first.ml",
            "≥ 4×",
            faster(4),
        )
        self.timing("first run, Hydra config tree", "first.dvc", "first.mlh", "≥ 4×", faster(4))
        self.timing("first run, `mlbuild run -j 1`", "first.dvc", "first.ml-j1", "—", None)
        data = self.samples.data_bytes
        for key, label in (("first.ml", "`mlbuild run`"), ("first.ml-j1", "`mlbuild run -j 1`")):
            hashed = [h["bytes_hashed"] for h in self.samples.hashing.get(key, [])]
            if hashed:
                self.fact(
                    f"first run, {label}: bytes hashed (data/raw is {data / (1 << 30):.2f} GiB)",
                    "—",
                    f"{max(hashed) / (1 << 30):.2f} GiB",
                    "each byte once",
                    max(hashed) < data * 1.05 + (1 << 20),
                )

    def no_op(self) -> None:
        self.timing(
            "no-op run: `dvc repro` / `mlbuild run`",
            "noop.dvc",
            "noop.ml",
            "≥ 4× and < 0.3 s",
            faster(4, 0.3),
        )
        self.timing(
            "no-op run, Hydra config tree",
            "noop.dvc",
            "noop.mlh",
            "≥ 4× and < 0.3 s",
            faster(4, 0.3),
        )
        reread = [
            h["files_hashed"]
            for key in ("noop.ml", "noop.mlh")
            for h in self.samples.hashing.get(key, [])
        ]
        if reread:
            self.fact(
                "no-op run: files re-read (state table)",
                "—",
                str(max(reread)),
                "0",
                not any(reread),
            )
        self.timing(
            "no-op status: `dvc status` / `mlbuild status`", "status.dvc", "status.ml", "—", None
        )
        self.timing("no-op status, Hydra config tree", "status.dvc", "status.mlh", "—", None)

    def _ran(self, key: str, expected: list[str] = AFFECTED) -> tuple[str, bool]:
        runs = self.samples.ran.get(key, [])
        exact = bool(runs) and all(sorted(r) == expected for r in runs)
        counts = "/".join(str(c) for c in sorted({len(r) for r in runs}))
        return f"{counts} of {len(STAGES)}" + ("" if exact else f" ({runs})"), exact

    def param_change(self, kind: str, label: str) -> None:
        exactly = f"exactly {', '.join(AFFECTED)}"
        dvc_text, dvc_exact = self._ran("param.dvc")
        ml_text, ml_exact = self._ran(f"param.{kind}")
        self.fact(
            f"param edited ({label}): stages that ran",
            dvc_text,
            ml_text,
            exactly,
            ml_exact and dvc_exact,
        )
        self.timing(f"param edited ({label}): wall", "param.dvc", f"param.{kind}", "—", None)
        self.timing(
            f"param edited ({label}): mlbuild overhead = wall − Σ step durations",
            None,
            f"param.{kind}.overhead",
            "< 0.2 s",
            under(0.2),
        )
        text, exact = self._ran(f"override.{kind}")
        self.fact(
            f"`mlbuild run {CHANGED}.n=V` ({label}): stages that ran", "—", text, exactly, exact
        )
        self.timing(
            f"`mlbuild run {CHANGED}.n=V` ({label}): overhead",
            None,
            f"override.{kind}.overhead",
            "< 0.2 s",
            under(0.2),
        )

    def bare(self) -> None:
        med = self.samples.median
        bare, dvc, ml = med("bare.affected"), med("param.dvc"), med("param.ml")
        if bare is not None and dvc is not None and ml is not None:
            self.rows.append(
                (
                    f"param edited: wall − the 3 commands run bare ({_s(bare)})",
                    _s(dvc - bare),
                    _s(ml - bare),
                    _ratio(dvc - bare, ml - bare),
                    "—",
                    "info",
                )
            )
        self.fact("the 8 commands run bare, one after another", "—", _s(med("bare.all")), "—", None)

    def dvc_data(self) -> None:
        """The repo where data/raw is tracked by `dvc add` and ml.yaml reads it as `data:raw`."""
        if f"noop.{DD}.ml" not in self.samples.values:
            return
        label = "DVC-tracked data/raw"
        self.timing(
            f"{label}: first run, `dvc repro` / `mlbuild run` (verifies the dataset through DVC)",
            f"first.{DD}.dvc",
            f"first.{DD}.ml",
            "—",
            None,
        )
        self.timing(
            f"{label}: no-op run: `dvc repro` / `mlbuild run`",
            f"noop.{DD}.dvc",
            f"noop.{DD}.ml",
            "≥ 4× and < 0.3 s",
            faster(4, 0.3),
        )
        self.timing(
            f"{label}: no-op `dvc status` / `mlbuild run`",
            f"status.{DD}.dvc",
            f"noop.{DD}.ml",
            "≥ 4× and < 0.3 s",
            faster(4, 0.3),
        )
        self.timing(
            f"{label}: no-op status: `dvc status` / `mlbuild status`",
            f"status.{DD}.dvc",
            f"status.{DD}.ml",
            "—",
            None,
        )
        reread = [h["files_hashed"] for h in self.samples.hashing.get(f"noop.{DD}.ml", [])]
        self.fact(
            f"{label}: no-op run: files re-read",
            "—",
            str(max(reread, default=0)),
            "0",
            not any(reread),
        )
        readers = ", ".join(DATA_READERS)
        dvc_text, dvc_exact = self._ran(f"change.{DD}.dvc", DATA_READERS)
        ml_text, ml_exact = self._ran(f"change.{DD}.ml", DATA_READERS)
        self.fact(
            f"{label}: one file replaced + `dvc add data/raw`: stages that ran",
            dvc_text,
            ml_text,
            f"exactly {readers} (the readers of data:raw)",
            ml_exact and dvc_exact,
        )
        self.timing(
            f"{label}: one file replaced + `dvc add data/raw`: wall",
            f"change.{DD}.dvc",
            f"change.{DD}.ml",
            "—",
            None,
        )

    def import_checks(self) -> None:
        for probe in self.probes:
            if not probe.check:
                continue
            banned = "pydantic, Hydra or " if probe.check == "light" else ""
            forbidden = probe.forbidden()
            self.fact(
                f"{probe.label} imports no {banned}{', '.join(HEAVY)}",
                "—",
                ", ".join(forbidden) or "none",
                "none",
                not forbidden,
            )


def render_table(rows: list[Row]) -> str:
    header = ("measurement (median)", "DVC", "mlbuild", "DVC / mlbuild", "target", "result")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_import_costs(probes: list[Probe]) -> str:
    """Milliseconds spent executing each group's modules at import, per probed command."""
    header = ["command", "wall", *IMPORT_GROUPS, "stdlib & other", "all imports"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for probe in probes:
        cells = [f"{probe.costs[g]:.0f}" if g in probe.costs else "" for g in IMPORT_GROUPS]
        cells += [f"{probe.costs.get('', 0.0):.0f}", f"{sum(probe.costs.values()):.0f}"]
        lines.append(f"| {probe.label} | {probe.wall * 1000:.0f} | " + " | ".join(cells) + " |")
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


def make_tools(args: argparse.Namespace, workdir: Path) -> tuple[Tools, str]:
    """The tools and their environments, and a line saying which mlbuild source is measured."""
    # Both tools run as installed software does: with bytecode caches. This machine's environment
    # sets PYTHONDONTWRITEBYTECODE=1, and an editable install has no .pyc files, so without this
    # every mlbuild command would recompile mlbuild's modules from source (DVC's venv has them).
    # The caches go to a prefix inside the work directory, never into the source tree.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLBUILD_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env |= {
        "DVC_NO_ANALYTICS": "1",
        "NO_COLOR": "1",
        "PYTHONPYCACHEPREFIX": str(workdir / "pycache"),
    }
    tools = Tools(str(args.dvc), str(args.mlbuild), str(args.stage_python), env, dict(env))
    if not args.snapshot:
        return tools, f"- mlbuild source: as installed (`--no-snapshot`), {dt.datetime.now():%H:%M}"
    source, digest = snapshot_mlbuild(tools.mlbuild_python(), env, workdir / "snapshot")
    tools.ml_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(workdir / "snapshot"), env.get("PYTHONPATH")) if p
    )
    log(f"benchmarking a snapshot of {source} ({digest})")
    return tools, (
        f"- mlbuild source: a copy of {source} taken at the start "
        f"({dt.datetime.now():%Y-%m-%d %H:%M}; sha256 of the files {digest})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for binary in (args.dvc, args.mlbuild, args.stage_python):
        if not Path(binary).is_file():
            print(f"bench_vs_dvc: {binary} not found", file=sys.stderr)
            return 2
    if args.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="mlbuild-bench-"))
    else:
        workdir = args.workdir.absolute()
        workdir.mkdir(parents=True, exist_ok=False)
    failed = True
    try:
        tools, source_note = make_tools(args, workdir)
        header = [*machine(tools), source_note]
        bench = Bench(args, tools, workdir)
        started = time.perf_counter()
        bench.setup()
        log(f"set up in {_since(started)}; work directory {workdir}")
        for rep in range(args.warmup):
            began = time.perf_counter()
            bench.rep(rep, record=False)
            log(f"warm-up {rep + 1}/{args.warmup} done in {_since(began)}")
        for rep in range(args.reps):
            began = time.perf_counter()
            bench.rep(rep)
            log(f"repetition {rep + 1}/{args.reps} done in {_since(began)}")
        imports = bench.imports()
        failed = False
    except BenchError as exc:
        print(f"bench_vs_dvc: {exc}", file=sys.stderr)
        print(f"bench_vs_dvc: work directory kept: {workdir}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = Rows(bench.samples, imports).build()
    print(render_table(rows))
    print()
    print(render_cpu(bench.samples))
    print()
    print(render_import_costs(imports))
    if args.results is not None:
        command = shlex.join([Path(sys.executable).name, *sys.argv])
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        header.append(f"- load average after the run: {load} (other jobs share this machine)")
        text = render_markdown(args, bench.samples, rows, imports, header, command)
        write_results(args.results, text)
        log(f"wrote {args.results}")
    if args.json is not None:
        raw = {
            "values": bench.samples.values,
            "ran": bench.samples.ran,
            "hashing": bench.samples.hashing,
            "imports": {p.label: {"modules": p.modules, "ms": p.costs} for p in imports},
        }
        args.json.write_text(json.dumps(raw, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
