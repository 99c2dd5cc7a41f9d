"""``mlbuild model …``: register a run's artifacts as a model version, move aliases, roll back."""

from __future__ import annotations

import argparse

from mlbuild.cli.shared import open_store_here
from mlbuild.cli.text import dump_json, table, when
from mlbuild.errors import NotFoundError, UsageError


def cmd_model_register(args: argparse.Namespace) -> int:
    store = open_store_here(args.file)
    run = store.get_run(args.run)
    chosen = [a for a in run.artifacts if a.cached]
    if args.artifact:
        wanted = [p.rstrip("/") for p in args.artifact]
        known = {a.path.rstrip("/"): a for a in run.artifacts}
        missing = [p for p in wanted if p not in known]
        if missing:
            raise NotFoundError(
                f"run {run.id[:8]} has no artifact {', '.join(missing)}; its artifacts: "
                f"{', '.join(known) or 'none'}"
            )
        chosen = [known[p] for p in wanted]
    version = store.register_model(args.name, run.id, chosen, args.description)
    if args.json:
        dump_json(version.to_json())
    else:
        count = len(version.artifacts)
        print(
            f"registered model '{version.name}' version {version.version} from run "
            f"{run.id[:8]} ({count} artifact{'s' if count != 1 else ''})"
        )
    return 0


def cmd_model_list(args: argparse.Namespace) -> int:
    store = open_store_here(args.file)
    versions = store.model_versions(args.name)
    aliases: dict[str, dict[int, list[str]]] = {}
    for name in {v.name for v in versions}:
        for alias, number in store.aliases(name).items():
            aliases.setdefault(name, {}).setdefault(number, []).append(alias)
    if args.json:
        dump_json(
            [
                v.to_json() | {"aliases": aliases.get(v.name, {}).get(v.version, [])}
                for v in versions
            ]
        )
        return 0
    if not versions:
        print("no models registered yet; `mlbuild model register RUN --name NAME` adds one")
        return 0
    rows = [
        [
            v.name,
            str(v.version),
            ",".join(aliases.get(v.name, {}).get(v.version, [])),
            v.run_id[:8],
            when(v.created),
            v.user,
            ", ".join(a.path for a in v.artifacts),
            ", ".join(f"{i['repository']}@{i['digest'][:19]}" for i in v.images),
        ]
        for v in versions
    ]
    header = ["MODEL", "VERSION", "ALIASES", "RUN", "CREATED", "BY", "ARTIFACTS", "IMAGE"]
    if not any(v.images for v in versions):  # a column only once something was published
        header, rows = header[:-1], [row[:-1] for row in rows]
    print(table(rows, header))
    return 0


def cmd_model_alias(args: argparse.Namespace) -> int:
    if args.remove == (args.number is not None):
        raise UsageError("give either a VERSION to point the alias at, or --remove")
    store = open_store_here(args.file)
    before = store.aliases(args.name).get(args.alias) if args.remove else None
    change = store.set_alias(args.name, args.alias, None if args.remove else args.number)
    if args.remove:
        print(f"removed alias '{args.alias}' of model '{args.name}' (was version {before})")
    else:
        print(f"model '{args.name}' alias '{args.alias}' → version {change.version}")
    return 0


def cmd_model_rollback(args: argparse.Namespace) -> int:
    store = open_store_here(args.file)
    before = store.aliases(args.name).get(args.alias)
    change = store.rollback_alias(args.name, args.alias)
    print(
        f"model '{args.name}' alias '{args.alias}' rolled back: version {before} → "
        f"version {change.version}"
    )
    return 0


def cmd_model_history(args: argparse.Namespace) -> int:
    store = open_store_here(args.file)
    store.model_versions(args.name)  # an unknown model is an error, not an empty history
    changes = store.alias_history(args.name)
    if args.json:
        dump_json([c.to_json() for c in changes])
        return 0
    rows = [
        [
            when(c.changed, seconds=True),
            c.alias,
            "removed" if c.version is None else str(c.version),
            c.user,
        ]
        for c in changes
    ]
    print(table(rows, ["WHEN", "ALIAS", "VERSION", "BY"]) if rows else "no alias was ever set")
    return 0
