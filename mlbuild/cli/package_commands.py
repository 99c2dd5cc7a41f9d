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
from mlbuild.package.env_marker import find_recipe


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
    import time

    from mlbuild.package import env_marker
    from mlbuild.recipe import RECIPE_FILE

    started = time.monotonic()
    recipe = Path(args.file).absolute() if args.file else find_recipe(Path.cwd(), RECIPE_FILE)
    found = env_marker.known(recipe, env_marker.ENV_MARKER) if recipe else None
    if found is not None:  # the recipe and the lock are the bytes of the last build
        return _env_built(
            args, found.lock, found.path, True, found.packages, time.monotonic() - started
        )
    from mlbuild.package.environments import build_env

    ws, graph, files = _env_files(args)
    built = build_env(
        ws.cache.root,
        ws.root / files.lock,
        files.lock,
        python=graph.python,
        progress=_say,
    )
    env_marker.remember(ws.recipe_path, files.lock, built.path, built.packages)
    return _env_built(args, files.lock, built.path, built.reused, built.packages, built.seconds)


def _env_built(
    args: argparse.Namespace, lock: str, path: Path, reused: bool, packages: int, seconds: float
) -> int:
    if args.json:
        dump_json(
            {
                "path": str(path),
                "python": str(path / "bin" / "python"),
                "reused": reused,
                "packages": packages,
                "seconds": round(seconds, 3),
            }
        )
        return 0
    if reused:
        print(f"environment of {lock} is up to date: {path}")
    else:
        print(
            f"built the environment of {lock} ({packages} packages, hashes verified) "
            f"in {seconds:.1f} s: {path}"
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


def bundle_to_serve(words: list[str]) -> Any:
    """The bundle ``mlbuild serve BUNDLE`` names (checked file by file), or None when the words
    are Hydra overrides."""
    from mlbuild.errors import UsageError
    from mlbuild.package.bundle_reader import is_bundle, open_bundle

    if not words or not is_bundle(words[0]):
        return None
    if len(words) > 1:
        raise UsageError("a bundle is served as it was built: give no overrides with it")
    sys.dont_write_bytecode = True  # the bundle's code was checked: leave its folder unchanged
    return open_bundle(Path(words[0]))


def _package_graph(args: argparse.Namespace) -> tuple[Any, Any]:
    from mlbuild.errors import UsageError

    ws = _workspace(args)
    try:
        graph = ws.graph(list(args.overrides))
    finally:
        ws.save_state()
    if graph.package is None:
        raise UsageError(
            f"{graph.recipe_file} has no package: section; add one, e.g. `package: {{bundle: "
            "dist/model.tar.gz}` or `package: {docker: {image: NAME}}` (see `mlbuild schema`)"
        )
    return ws, graph


def _gate(ws: Any, graph: Any, args: argparse.Namespace, action: str) -> dict[str, str]:
    """The release gate (``tests:``): refuse a model whose tests failed or did not run for it,
    unless ``--allow-failing-tests``; the labels that say which way it went."""
    from mlbuild.testing.gate import require_passing_tests

    gate = require_passing_tests(ws, graph, action=action, allow_failing=args.allow_failing_tests)
    if gate.allowed:
        _say(f"warning: {action} with --allow-failing-tests: {gate.findings()}")
    return gate.labels()


def _store(ws: Any, graph: Any) -> Any:
    from mlbuild.store import open_workspace_store

    return open_workspace_store(ws.meta, graph.store_url)


def cmd_package(args: argparse.Namespace) -> int:
    """``mlbuild package``: a view over the steps ``package:bundle`` and ``package:docker``
    (``mlbuild run package:docker`` brings the same steps up to date, from the same cache)."""
    from mlbuild.errors import UsageError
    from mlbuild.package.steps import BUNDLE_STEP, IMAGE_STEP

    ws, graph = _package_graph(args)
    spec = graph.package
    declared = [t for t in ("bundle", "docker") if getattr(spec, t) is not None]
    targets = args.target or declared
    for target in targets:
        if target not in declared:
            raise UsageError(
                f"--target {target}: the package: section declares no {target} target; "
                f"declared: {', '.join(declared) or 'none'}"
            )
    if args.dockerfile:
        from mlbuild.package.image import dockerfile_for

        if spec.docker is None:
            raise UsageError("--dockerfile: the package: section declares no docker target")
        print(dockerfile_for(ws, graph), end="")
        return 0
    if graph.model is None:
        raise UsageError(
            f"{graph.recipe_file} has no model: section; a package holds the model it declares "
            "(see `mlbuild schema`)"
        )
    steps = [BUNDLE_STEP if t == "bundle" else IMAGE_STEP for t in targets]
    data = _run_package_steps(ws, graph, steps, args)
    if args.json:
        dump_json({"bundle" if s == BUNDLE_STEP else "image": data[s] for s in steps})
        return 0
    if BUNDLE_STEP in steps:
        bundle = data[BUNDLE_STEP]
        print(
            f"bundle {bundle['bundle']}: model '{bundle['model']}' version {bundle['version']}, "
            f"{bundle['files']} files; serve it with `mlbuild serve {bundle['bundle']}`"
        )
    if IMAGE_STEP in steps:
        image = data[IMAGE_STEP]
        size = image["size"] / 1e6
        print(f"image {image['reference']} ({image['image_id'][:19]}), {size:.0f} MB")
    return 0


def _run_package_steps(
    ws: Any, graph: Any, steps: list[str], args: argparse.Namespace
) -> dict[str, dict[str, Any]]:
    """Bring ``steps`` (and what they need) up to date as a recorded run; each one's result."""
    import dataclasses
    import os

    from mlbuild.cli.output import Console, JsonReporter
    from mlbuild.cli.sections import step_reporter
    from mlbuild.errors import StepFailedError
    from mlbuild.exec import run_lock
    from mlbuild.runs import recorded_run
    from mlbuild.store import recorder_store

    graph = dataclasses.replace(graph, allow_failing_tests=args.allow_failing_tests)
    reporter = JsonReporter() if args.json else step_reporter(Console(sys.stderr), quiet=True)
    try:
        with run_lock(ws.meta, wait=False, on_wait=_say):
            recorded = recorded_run(
                ws,
                recorder_store(ws.meta, graph.store_url),
                graph,
                targets=steps,
                force=False,
                jobs=os.cpu_count() or 1,
                reporter=reporter,
                kind="package",
            )
    finally:
        reporter.close()
        ws.save_state()
    failed = recorded.summary.failed
    if failed:
        log = f"; log: {failed[0].log}" if failed[0].log else ""
        raise StepFailedError(f"step '{failed[0].name}' failed: {failed[0].message}{log}")
    return {o.name: o.data or {} for o in recorded.summary.outcomes}


def cmd_publish(args: argparse.Namespace) -> int:
    from mlbuild.errors import UsageError
    from mlbuild.package.gather import gather
    from mlbuild.package.publish import publish

    ws, graph = _package_graph(args)
    docker = graph.package.docker
    if docker is None or docker.registry is None:
        raise UsageError(
            "mlbuild publish pushes the docker target to its registry; add `package: {docker: "
            "{image: NAME, registry: HOST[:PORT]}}` to ml.yaml"
        )
    labels = _gate(ws, graph, args, "publish")
    store = _store(ws, graph)
    try:
        gathered = gather(ws, graph, store=store, version=args.version)
        if gathered.provenance.registered_version is None:
            raise UsageError(
                f"model '{graph.model.name}' has no registered version made of the workspace's "
                "model; the image's tag is the version: register the run first (`mlbuild model "
                f"register RUN --name {graph.model.name}`)"
            )
        published = publish(ws, graph, gathered, progress=_say, extra_labels=labels)
        store.record_image(
            graph.model.name,
            int(published.tag),
            f"{published.registry}/{published.repository}",
            published.digest,
        )
    finally:
        store.close()
    if args.json:
        dump_json(published.to_json())
    elif published.unchanged:
        print(
            f"{published.registry}/{published.repository}:{published.tag} already holds this "
            f"model: {published.reference} (nothing pushed)"
        )
    else:
        print(f"published {published.registry}/{published.repository}:{published.tag}")
        print(published.reference)
    return 0
