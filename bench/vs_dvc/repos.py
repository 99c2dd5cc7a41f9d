"""The generated repositories: data files, the pipeline written for DVC and for mlbuild, committed
templates and their cheap fresh copies."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from vs_dvc.common import DD, DD_OUT, STAGES, BenchError, Tools

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
