"""``mlbuild env lock|check|build``, ``mlbuild package`` and ``mlbuild publish``: thin wiring over
:mod:`mlbuild.package`."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from mlbuild.cli.text import dump_json
from mlbuild.errors import EXIT_FAILURE


def _workspace(args: argparse.Namespace) -> Any:
    from mlbuild.graph import Workspace

    return Workspace.find(Path.cwd(), Path(args.file) if args.file else None)


def _env_files(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from mlbuild.package.lockers import EnvFiles

    ws = _workspace(args)
    try:
        graph = ws.graph([])
    finally:
        ws.save_state()
    return ws, graph, EnvFiles.of(ws.root, graph.lock_file, graph.pipfile)


def _say(text: str) -> None:
    print(f"mlbuild: {text}", file=sys.stderr, flush=True)


def cmd_env_lock(args: argparse.Namespace) -> int:
    from mlbuild.package.lockers import lock_env

    _, _, files = _env_files(args)
    _say(f"locking {files.source or files.lock} …")
    result = lock_env(files)
    if args.json:
        dump_json(
            {
                "lock": result.lock,
                "created": result.created,
                "changes": [c.to_json() for c in result.changes],
            }
        )
        return 0
    if not result.changes:
        print(f"{result.lock}: unchanged")
        return 0
    verb = "created" if result.created else "updated"
    count = len(result.changes)
    print(f"{result.lock}: {verb}, {count} package{'s' if count != 1 else ''} changed")
    for change in result.changes:
        print(f"  {change.describe()}")
    return 0


def cmd_env_check(args: argparse.Namespace) -> int:
    from mlbuild.package.lockers import check_env

    _, _, files = _env_files(args)
    interpreter = args.python or shutil.which("python") or sys.executable
    report = check_env(files, interpreter)
    if args.json:
        dump_json(report.to_json())
        return 0 if report.ok else EXIT_FAILURE
    if report.lock_current is None:
        print(f"lock: {report.lock} (no {Path(report.lock).with_suffix('.in')} to compare with)")
    elif report.lock_current:
        print(f"lock: {report.lock} matches {report.source}")
    else:
        print(f"lock: {report.lock} does not match {report.source}")
        for problem in report.lock_problems:
            print(f"  {problem}")
    counts = (
        f"{len(report.missing)} missing, {len(report.wrong)} at another version, "
        f"{len(report.extra)} not in the lock"
    )
    state = "satisfies the lock" if not (report.missing or report.wrong) else "does not"
    print(f"interpreter: {report.interpreter} (Python {report.python_version}) {state}: {counts}")
    for pin in report.missing:
        print(f"  missing  {pin}")
    for name, installed, pinned in report.wrong:
        print(f"  version  {name} {installed} installed, the lock pins {pinned}")
    if report.extra:
        shown = ", ".join(report.extra[:10]) + (" …" if len(report.extra) > 10 else "")
        print(f"  extra    {shown}")
    if report.fix:
        print("fix: " + "; or ".join(f"`{command}`" for command in report.fix))
    return 0 if report.ok else EXIT_FAILURE


def cmd_env_build(args: argparse.Namespace) -> int:
    from mlbuild.package.environments import build_env

    ws, graph, files = _env_files(args)
    built = build_env(
        ws.cache.root,
        ws.root / files.lock,
        files.lock,
        python=graph.python,
        progress=_say,
    )
    if args.json:
        dump_json(
            {
                "path": str(built.path),
                "python": str(built.python),
                "reused": built.reused,
                "packages": built.packages,
                "seconds": round(built.seconds, 3),
            }
        )
        return 0
    if built.reused:
        print(f"environment of {files.lock} is up to date: {built.path}")
    else:
        print(
            f"built the environment of {files.lock} ({built.packages} packages, hashes verified) "
            f"in {built.seconds:.1f} s: {built.path}"
        )
    return 0


def isolation(ws: Any, graph: Any) -> dict[str, str]:
    """Build (or reuse) the environment of ``graph``'s lock; the variables its steps run with."""
    from mlbuild.package.environments import build_env, mlbuild_path
    from mlbuild.package.lockers import EnvFiles

    files = EnvFiles.of(ws.root, graph.lock_file, graph.pipfile)
    built = build_env(
        ws.cache.root, ws.root / files.lock, files.lock, python=graph.python, progress=_say
    )
    if not built.reused:
        _say(f"built the environment of {files.lock} in {built.seconds:.1f} s")
    return built.step_environment(mlbuild_path(ws.meta))
