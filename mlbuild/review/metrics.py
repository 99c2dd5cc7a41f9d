"""The metrics of the last finished run recorded at each side, from the run store.

A revision's run is the last finished one at its commit with a clean tree; the working tree's is
the last at ``HEAD`` in the same state (clean, or dirty with the same ``git diff HEAD``). Either
must have been run with the diff's overrides: a run of another configuration is not comparable.

Read only when the workspace has a store (a team store URL, ``runs.db`` or journaled runs), so a
diff in a fresh clone never loads SQLAlchemy. For the default local store the answers are kept in
``.mlbuild/review/runs.json`` keyed by the store files' state (the database, its WAL, the
journal): SQLAlchemy's import alone costs more than the rest of a diff, and an unchanged store
gives the same answer. A store that cannot be read is a note in the report, not a failed diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlbuild import atomic, racy
from mlbuild.errors import MlbuildError
from mlbuild.graph import Graph, Workspace
from mlbuild.review.revisions import Side
from mlbuild.store import STORE_ENV, STORE_FILE, RunQuery, open_workspace_store
from mlbuild.store.journal import JOURNAL_DIR

if TYPE_CHECKING:
    from mlbuild.store import RunRecord

_MEMO = "review/runs.json"  # below .mlbuild


def last_runs(ws: Workspace, graph: Graph, sides: list[Side]) -> dict[str, Any] | None:
    """``{"a": {...}, "b": {...}}``: each side's last finished run (id, start, dirty flag,
    metrics) or ``None``; ``{"error": …}`` when the store cannot be read; ``None`` without one."""
    local = not (os.environ.get(STORE_ENV) or graph.store_url)
    if local and not _has_local_store(ws.meta):
        return None
    wanted = {
        key: _state_of(ws.root, side, graph.overrides)
        for key, side in zip(("a", "b"), sides, strict=True)
    }
    before, settled = _store_state(ws.meta) if local else (None, False)
    memo = _read_memo(ws.meta, before) if before is not None else {}
    if all(state is None or state in memo for state in wanted.values()):
        return {key: None if state is None else memo[state] for key, state in wanted.items()}
    try:
        found = _query(ws, graph, wanted)
    except MlbuildError as exc:
        return {"error": exc.message}
    # remembered only for a store that changed neither meanwhile nor within the last tick (a
    # write in the same tick as its stat would leave the state as it was)
    if before is not None and settled and _store_state(ws.meta) == (before, True):
        answers = {state: found[key] for key, state in wanted.items() if state is not None}
        _write_memo(ws.meta, before, {**memo, **answers})
    return found


def _state_of(root: Path, side: Side, overrides: list[str]) -> str | None:
    """Which recorded runs belong to ``side``: ``COMMIT`` (clean) or ``COMMIT+DIFFHASH``, then
    a space and the overrides as JSON."""
    if side.commit is None:
        return None
    state = side.commit
    if side.kind == "worktree":
        from mlbuild.runs.provenance import git_info  # only with a store: it loads the recorder

        info = git_info(root)
        if info is None:
            return None
        state = f"{info.commit}+{info.diff_hash}" if info.dirty else info.commit
    return f"{state} {json.dumps(overrides)}"


def _query(ws: Workspace, graph: Graph, wanted: dict[str, str | None]) -> dict[str, Any]:
    store = open_workspace_store(ws.meta, graph.store_url, warn=lambda _: None)
    try:
        found: dict[str, Any] = {}
        for key, state in wanted.items():
            if state is None:
                found[key] = None
                continue
            revision, _, overrides = state.partition(" ")
            commit, _, diff_hash = revision.partition("+")
            runs = store.list_runs(RunQuery(commit=commit, statuses=["finished"], limit=None))
            match = next(
                (
                    r
                    for r in runs
                    if _matches(r, commit, diff_hash or None)
                    and r.overrides == json.loads(overrides)
                ),
                None,
            )
            found[key] = None if match is None else _describe(match)
        return found
    finally:
        store.close()


def _matches(run: RunRecord, commit: str, diff_hash: str | None) -> bool:
    if run.git is None or run.git.commit != commit:
        return False
    return run.git.diff_hash == diff_hash if diff_hash else not run.git.dirty


def _describe(run: RunRecord) -> dict[str, Any]:
    return {
        "run": run.id,
        "started": run.started,
        "dirty": bool(run.git and run.git.dirty),
        "metrics": run.metrics,
    }


# ---- the memo of answers from the local store ----------------------------------------------------


def _has_local_store(meta: Path) -> bool:
    journal = meta / JOURNAL_DIR
    return (meta / STORE_FILE).exists() or (journal.is_dir() and any(journal.glob("*.json")))


def _store_state(meta: Path) -> tuple[str, bool]:
    """The state of the local store's files — any write to the database, its write-ahead log or
    the journal changes it (the ctime: a write that keeps the size and sets the mtime back too) —
    and whether it is settled: last written before :func:`mlbuild.racy.cutoff`, so that a write
    still to come cannot leave every stat as it is."""
    parts: list[list[object]] = []
    settled = True
    for path in (meta / STORE_FILE, meta / f"{STORE_FILE}-wal"):
        try:
            st = path.stat()
        except FileNotFoundError:
            parts.append([path.name])
            continue
        parts.append([path.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
        settled = settled and max(st.st_mtime_ns, st.st_ctime_ns) < racy.cutoff()
    journal = meta / JOURNAL_DIR
    if journal.is_dir():
        parts.append([*sorted(p.name for p in journal.glob("*.json"))])
    return json.dumps(parts), settled


def _read_memo(meta: Path, state: str) -> dict[str, Any]:
    try:
        raw = json.loads((meta / _MEMO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or raw.get("state") != state:
        return {}
    answers = raw.get("answers")
    return answers if isinstance(answers, dict) else {}


def _write_memo(meta: Path, state: str, answers: dict[str, Any]) -> None:
    # derived and checked against ``state`` when read: a crash may lose it, never tear it
    atomic.write_json(meta / _MEMO, {"state": state, "answers": answers}, sync=False)
