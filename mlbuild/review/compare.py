"""Compare two resolved sides semantically: steps, params, data, environment, model, the rest.

A step's *why* is :func:`~mlbuild.graph.explain` of its fingerprint inputs at A against those at
B — the same sentences ``mlbuild plan`` prints — with other steps' outputs left out, so a step
that only reads a changed upstream output says so through ``after`` instead. Test gates, searches
and package settings are compared entry by entry (:mod:`mlbuild.review.sections`); sections this
module does not know (whatever later issues add to the recipe: deploy) are compared as key paths,
so they show up without code here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mlbuild.graph import StepSpec, explain
from mlbuild.nested import leaves
from mlbuild.review import sections as named
from mlbuild.review.locks import PackageChange, compare_pins
from mlbuild.review.resolve import CachePlan, Resolved, cache_plan
from mlbuild.review.revisions import Side
from mlbuild.review.sections import Change, EntryDiff
from mlbuild.review.sections import changes as _changes

# sections compared by their own rules below; every other top-level key is compared generically
_KNOWN_SECTIONS = (
    "schema_version",
    "environment",
    "params",
    "data",
    "steps",
    "model",
    "tests",
    "search",
    "package",
)
_STEP_FIELDS = (
    "cmd",
    "deps",
    "outs",
    "params",
    "metrics",
    "data",
    "env",
    "secrets",
    "needs",
    "always_run",
    "timeout",
)


@dataclass
class StepDiff:
    name: str
    change: str  # added | removed | changed | unchanged
    fields: list[Change] = field(default_factory=list)  # the step's declaration, A → B
    reasons: list[str] = field(default_factory=list)  # why its result at B differs from A's
    after: list[str] = field(default_factory=list)  # upstream steps whose results differ
    plan: CachePlan | None = None  # what a run at B does (None for a removed step)

    @property
    def reruns(self) -> bool:
        """Its result at B may differ from A's: its own inputs changed, or an upstream's did."""
        return self.change != "removed" and bool(self.reasons or self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "change": self.change,
            "fields": [c.to_json() for c in self.fields],
            "reasons": self.reasons,
            "after": self.after,
            "reruns": self.reruns,
            "at_b": None if self.plan is None else self.plan.action,
            "at_b_after": [] if self.plan is None else list(self.plan.after),
            "fingerprint": None if self.plan is None else self.plan.fingerprint,
        }


@dataclass(frozen=True)
class DataChange:
    name: str
    old: str | None  # "dvc 8048d9a2…" (kind and version), None when absent
    new: str | None


@dataclass
class Report:
    a: Side
    b: Side
    steps: list[StepDiff]
    params: list[Change]
    data: list[DataChange]
    environment: list[Change]  # python version, lock file path
    packages: list[PackageChange]
    lock_errors: list[str]
    model: list[Change]
    gates: list[EntryDiff]  # tests:
    searches: list[EntryDiff]  # search:
    package: list[Change]  # package:
    sections: list[Change]
    metrics: dict[str, Any] | None = None  # filled in by the caller when a run store exists
    notes: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (
            any(s.change != "unchanged" or s.reasons for s in self.steps)
            or self.params
            or self.data
            or self.environment
            or self.packages
            or self.model
            or self.gates
            or self.searches
            or self.package
            or self.sections
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "unchanged": self.unchanged,
            "steps": [s.to_json() for s in self.steps],
            "params": [c.to_json() for c in self.params],
            "data": [asdict(d) for d in self.data],
            "environment": [c.to_json() for c in self.environment],
            "packages": [p.to_json() for p in self.packages],
            "lock_errors": self.lock_errors,
            "model": [c.to_json() for c in self.model],
            "gates": [g.to_json() for g in self.gates],
            "searches": [s.to_json() for s in self.searches],
            "package": [c.to_json() for c in self.package],
            "sections": [c.to_json() for c in self.sections],
            "metrics": self.metrics,
            "notes": self.notes,
        }


def compare(a: Resolved, b: Resolved) -> Report:
    """What changes from ``a`` to ``b``, and what a run at ``b`` does about it."""
    plans = cache_plan(b)
    steps = _steps(a, b, plans)
    packages = compare_pins(a.packages or {}, b.packages or {})
    environment = _changes(
        {"python": a.graph.python, "lock file": a.graph.lock_file},
        {"python": b.graph.python, "lock file": b.graph.lock_file},
    )
    model_a = asdict(a.graph.model) if a.graph.model else {}
    model_b = asdict(b.graph.model) if b.graph.model else {}
    others = sorted((a.sections.keys() | b.sections.keys()) - set(_KNOWN_SECTIONS), key=str)
    sections = _changes(
        {str(k): a.sections.get(k) for k in others if k in a.sections},
        {str(k): b.sections.get(k) for k in others if k in b.sections},
    )
    notes = [
        f"{side.label}: not copied from git: {entry}"
        for side in (a.side, b.side)
        for entry in side.skipped
    ]
    return Report(
        a=a.side,
        b=b.side,
        steps=steps,
        params=_changes(a.graph.params, b.graph.params),
        data=_data(a, b),
        environment=environment,
        packages=packages,
        lock_errors=[f"{r.side.label}: {r.lock_error}" for r in (a, b) if r.lock_error],
        model=[Change(f"model.{c.path}", c.old, c.new) for c in _changes(model_a, model_b)],
        gates=named.gates(a.sections.get("tests"), b.sections.get("tests")),
        searches=named.searches(a.sections.get("search"), b.sections.get("search")),
        package=named.package(a.sections.get("package"), b.sections.get("package")),
        sections=sections,
        notes=notes,
    )


def _steps(a: Resolved, b: Resolved, plans: dict[str, CachePlan]) -> list[StepDiff]:
    # what `mlbuild run` brings up to date at each side: the tests', searches' and packages' own
    # steps run when named (`mlbuild test`, `mlbuild package`) and have their own tables
    live_a = set(a.graph.upstream_closure(a.graph.default_targets()))
    live_b = set(b.graph.upstream_closure(b.graph.default_targets()))
    diffs: dict[str, StepDiff] = {}
    for name, step in b.graph.steps.items():  # B's order: topological
        if name not in live_b:
            continue
        old = a.graph.steps.get(name)
        if old is None:
            diffs[name] = StepDiff(name, "added", reasons=["new step"], plan=plans[name])
            continue
        fields = _step_fields(old, step)
        reasons = [r for r in explain(a.own[name], b.own[name]) if not r.startswith("never")]
        after = [u for u in step.upstream if u in diffs and diffs[u].reruns]
        change = "changed" if fields or reasons else "unchanged"
        diffs[name] = StepDiff(name, change, fields, reasons, after, plans[name])
    removed = [StepDiff(n, "removed") for n in a.graph.steps if n in live_a and n not in live_b]
    return [*diffs.values(), *removed]


def _step_fields(old: StepSpec, new: StepSpec) -> list[Change]:
    changes = []
    for name in _STEP_FIELDS:
        before, after = _field(old, name), _field(new, name)
        if before != after:
            changes.append(Change(name, before, after))
    return changes


def _field(step: StepSpec, name: str) -> Any:
    if name == "cmd":
        return step.display_cmd()
    if name == "outs":
        return [
            o.path + "".join(f" ({flag})" for flag in _flags(o.cache, o.persist, o.dvc))
            for o in step.outs
        ]
    if name == "params":  # which keys it reads; their values are compared under params
        return sorted(leaves(step.params))
    return getattr(step, name)


def _flags(cache: bool, persist: bool, dvc: bool) -> list[str]:
    return [f for f, on in (("cache: false", not cache), ("persist", persist), ("dvc", dvc)) if on]


def _data(a: Resolved, b: Resolved) -> list[DataChange]:
    changes = []
    for name in sorted(a.data.keys() | b.data.keys()):
        old, new = a.data.get(name), b.data.get(name)
        shown_old = f"{old.kind} {old.version}" if old else None
        shown_new = f"{new.kind} {new.version}" if new else None
        if shown_old != shown_new:
            changes.append(DataChange(name, shown_old, shown_new))
    return changes
