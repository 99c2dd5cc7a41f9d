"""``mlbuild cache push | pull | status``: the steps' results between the local and the remote
cache, without running or restoring anything.

Each works from the plan (``make_plan``), so a step's fingerprint is the one ``run`` would compute
now, also for a step after one whose result would be restored: push uploads what the local cache
holds for the current inputs, pull brings what the remote holds into the local cache (``run``
then restores it without the network), status says for each step where its result is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlbuild.cache import ActionResult, Objects
from mlbuild.cache.remote import RemoteCache
from mlbuild.graph import Action, Decision, Graph, Workspace, make_plan

# a local store that holds nothing, to ask whether the remote alone holds a result
_NOTHING = Objects(Path("/nonexistent/mlbuild-objects"))


@dataclass(frozen=True)
class StepTransfer:
    """What push or pull did for one step."""

    step: str
    fingerprint: str | None
    outcome: str  # pushed, pulled, present (nothing to do), missing, after
    detail: str = ""
    size: int = 0  # bytes sent or received


@dataclass(frozen=True)
class StepPlace:
    """Where one step's result for its current inputs is."""

    step: str
    fingerprint: str | None
    local: str  # yes, no, unknown (its inputs come from a step not built)
    remote: str  # yes, no, incomplete (the entry without all its objects), unknown
    detail: str = ""


def push(ws: Workspace, graph: Graph, names: list[str], remote: RemoteCache) -> list[StepTransfer]:
    """Upload each step's locally cached result (objects, then the entry)."""
    done = []
    for d in make_plan(ws.planner(graph), names):
        if d.result is None or d.fingerprint is None:
            done.append(_not_built(d, "not in the local cache; run it first"))
            continue
        before = remote.report.uploaded_bytes
        problem = remote.upload(d.fingerprint, d.result, ws.cache.objects)
        if problem is None:
            sent = remote.report.uploaded_bytes - before
            done.append(StepTransfer(d.step, d.fingerprint, "pushed", size=sent))
        else:
            done.append(StepTransfer(d.step, d.fingerprint, "failed", problem))
    return done


def pull(ws: Workspace, graph: Graph, names: list[str], remote: RemoteCache) -> list[StepTransfer]:
    """Bring each step's result from the remote into the local cache, verified."""
    done = []
    for d in make_plan(ws.planner(graph, remote=remote), names):
        if d.result is None or d.fingerprint is None:
            done.append(_not_built(d, "not in the remote cache"))
        elif d.source != "remote":
            done.append(
                StepTransfer(d.step, d.fingerprint, "present", "already in the local cache")
            )
        else:
            before = remote.report.fetched_bytes
            with ws.cache.writing():
                problem = remote.fetch(d.fingerprint, d.result, ws.cache, d.step)
            if problem is None:
                got = remote.report.fetched_bytes - before
                done.append(StepTransfer(d.step, d.fingerprint, "pulled", size=got))
            else:
                done.append(StepTransfer(d.step, d.fingerprint, "failed", problem))
    return done


def status(ws: Workspace, graph: Graph, names: list[str], remote: RemoteCache) -> list[StepPlace]:
    """Where each step's result is: in the local cache, the remote one, both or neither."""
    places = []
    for d in make_plan(ws.planner(graph, remote=remote), names):
        if d.fingerprint is None:
            after = ", ".join(f"'{a}'" for a in d.after)
            places.append(StepPlace(d.step, None, "unknown", "unknown", f"after {after}"))
            continue
        outs = {o.path for o in graph.steps[d.step].outs}
        local = ws.cache.actions.get(d.fingerprint)
        local_held = local is not None and all(
            ws.cache.objects.holds(r.digest, r.size) for r in local.outs.values() if r.cached
        )
        found = d.result if d.source == "remote" else remote.lookup(d.fingerprint, outs, d.step)
        where = "no" if found is None else "incomplete" if _lacks(remote, found, d.step) else "yes"
        detail = "" if local_held or found is not None else (d.reasons[0] if d.reasons else "")
        places.append(
            StepPlace(d.step, d.fingerprint, "yes" if local_held else "no", where, detail)
        )
    return places


def _lacks(remote: RemoteCache, result: ActionResult, step: str) -> bool:
    """Whether the remote lacks an object of ``result`` (whatever the local cache holds)."""
    return bool(remote.missing(result, step, _NOTHING))


def _not_built(d: Decision, missing: str) -> StepTransfer:
    if d.action is Action.PENDING:
        after = ", ".join(f"'{a}'" for a in d.after)
        return StepTransfer(d.step, None, "after", f"its inputs come from {after}, not built")
    return StepTransfer(d.step, d.fingerprint, "missing", missing)
