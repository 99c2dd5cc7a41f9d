"""``mlbuild cache push | pull | status``: the remote cache by hand."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild.cli.text import dump_json, size, table
from mlbuild.cli.words import one_recipe, split_words
from mlbuild.errors import UsageError

if TYPE_CHECKING:
    from mlbuild.cache.remote import RemoteCache
    from mlbuild.graph import Graph, Workspace

_NO_REMOTE = (
    "no remote cache is configured; name one in ml.yaml (`cache: {remote: s3://BUCKET/PREFIX}`) "
    "or in MLBUILD_REMOTE_CACHE"
)


def cmd_cache_push(args: argparse.Namespace) -> int:
    from mlbuild.cache.remote import read_only_from
    from mlbuild.runs.remote_cache import push

    ws, graph, names, remote = _open(args)
    if remote.read_only:
        switch = read_only_from(os.environ)
        raise UsageError(
            f"{switch} is set: this environment only reads the remote cache {remote.shown}"
        )
    done = push(ws, graph, names, remote)
    return _transfers(args, done, remote, "pushed", "to")


def cmd_cache_pull(args: argparse.Namespace) -> int:
    from mlbuild.runs.remote_cache import pull

    ws, graph, names, remote = _open(args)
    done = pull(ws, graph, names, remote)
    code = _transfers(args, done, remote, "pulled", "from")
    if not args.json and any(t.outcome == "pulled" for t in done):
        print("`mlbuild run` restores them from the local cache")
    return code


def cmd_cache_status(args: argparse.Namespace) -> int:
    from mlbuild.runs.remote_cache import status

    ws, graph, names, remote = _open(args)
    places = status(ws, graph, names, remote)
    if args.json:
        dump_json({"remote": remote.shown, "steps": [p.__dict__ for p in places]})
        return 0
    print(f"remote cache: {remote.shown}")
    rows = [[p.step, p.local, p.remote, (p.fingerprint or "")[:12], p.detail] for p in places]
    print(table(rows, ["STEP", "LOCAL", "REMOTE", "FINGERPRINT", "NOTE"]))
    return 0


def _open(args: argparse.Namespace) -> tuple[Workspace, Graph, list[str], RemoteCache]:
    from mlbuild.graph import Workspace

    words = split_words(args.args)
    recipe = one_recipe(words, args.file)
    ws = Workspace.find(Path.cwd(), recipe)
    try:
        graph = ws.graph(words.overrides)
    finally:
        ws.save_state()
    unknown = [n for n in words.steps if n not in graph.steps]
    if unknown:
        from mlbuild.params import suggest

        known = list(graph.steps)
        raise UsageError(
            f"no step named '{unknown[0]}'{suggest(unknown[0], known)}; steps: {', '.join(known)}"
        )
    remote = ws.remote(graph, strict=True)
    if remote is None:
        raise UsageError(_NO_REMOTE)
    remote.warn = lambda step, text: print(f"mlbuild: {step}: {text}", file=sys.stderr)
    return ws, graph, graph.upstream_closure(words.steps or graph.default_targets()), remote


def _transfers(
    args: argparse.Namespace, done: list[Any], remote: RemoteCache, verb: str, way: str
) -> int:
    failed = [t for t in done if t.outcome == "failed"]
    if args.json:
        dump_json({"remote": remote.shown, "steps": [t.__dict__ for t in done]})
        return 1 if failed else 0
    rows = [[t.step, t.outcome, size(t.size) if t.size else "", t.detail] for t in done]
    print(table(rows, ["STEP", "RESULT", "SIZE", "DETAIL"]))
    moved = [t for t in done if t.outcome == verb]
    total = sum(t.size for t in moved)
    print(f"{verb} {len(moved)} of {len(done)} steps {way} {remote.shown} ({size(total)})")
    return 1 if failed else 0
