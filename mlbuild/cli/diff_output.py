"""``mlbuild diff``'s report as terminal text or as a Markdown merge-request comment.

Both start with the same summary line — what a run at B does (how many steps run, how many come
from the cache) and what changed — then one table per kind of change, and only for kinds that
changed, so an unchanged pipeline reads in one line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from mlbuild.cli.text import table
from mlbuild.review import Change, EntryDiff, Report, StepDiff

_LONG = 100  # characters of a value shown in a table; --json has them whole
_HASH = re.compile(r"\b[0-9a-f]{32,}(\.dir)?\b")


def summary(report: Report, code: Callable[[str], str] = str) -> str:
    """One line: what a run at B does, then what changed from A to B. ``code`` marks the names
    that come from the repository (Markdown puts them in code spans)."""
    b = code(report.b.label)
    live = [s for s in report.steps if s.plan is not None]
    runs = [s.name for s in live if s.plan is not None and s.plan.action != "cached"]
    cached = [s.name for s in live if s.plan is not None and s.plan.action == "cached"]
    head = f"At {b}: {len(runs)} of {_count(len(live), 'step')} run"
    head += f" ({', '.join(code(r) for r in runs)})" if runs else ""
    head += f", {len(cached)} from the cache" if cached else ""
    if report.unchanged:
        return f"{head}; nothing that affects the pipeline changed from {code(report.a.label)}"
    changed = []
    kinds = [s.change for s in report.steps]
    step_counts = [f"{kinds.count(k)} {k}" for k in ("added", "changed", "removed") if k in kinds]
    if step_counts:
        changed.append(f"steps {', '.join(step_counts)}")
    for items, noun in (
        (report.params, "param"),
        (report.data, "dataset"),
        (report.environment, "environment setting"),
        (report.packages, "package"),
        (report.model, "model setting"),
    ):
        if items:
            changed.append(_count(len(items), noun))
    for entries, noun in ((report.gates, "test gate"), (report.searches, "search")):
        if entries:
            names = ", ".join(code(e.name) for e in entries)
            changed.append(f"{_count(len(entries), noun)} ({names})")
    for items, noun in ((report.package, "package setting"), (report.sections, "other setting")):
        if items:
            changed.append(_count(len(items), noun))
    return f"{head}; changed: {', '.join(changed)}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _at_b(step: StepDiff) -> str:
    if step.plan is None:
        return "—"
    if step.plan.action == "cached":
        return "from the cache"
    if step.plan.action == "pending" and step.plan.after:
        return f"after {', '.join(step.plan.after)}"
    return "runs" if step.plan.action == "run" else "pending"


def _why(step: StepDiff) -> str:
    reasons = list(step.reasons)
    reasons += [f"upstream '{u}' re-runs" for u in step.after]
    if not reasons and step.plan is not None and step.plan.note and step.plan.action == "run":
        reasons.append(step.plan.note)
    return "; ".join(reasons)


def show(value: Any) -> str:
    """A value as a reviewer reads it: text as is, hashes shortened, absent as ``—``."""
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = _HASH.sub(lambda m: m.group(0)[:12], text)
    return text if len(text) <= _LONG else text[: _LONG - 1] + "…"


def _field_rows(report: Report) -> list[list[str]]:
    return [
        [s.name, c.path, show(c.old), show(c.new)]
        for s in report.steps
        for c in s.fields
        if s.change == "changed"
    ]


def _change_rows(changes: list[Change]) -> list[list[str]]:
    return [[c.path, show(c.old), show(c.new)] for c in changes]


def _entry_rows(entries: list[EntryDiff], what: str) -> list[list[str]]:
    """One row per changed field; an added or removed entry in one row, with its ``what``
    (a test's kind, a search's step)."""
    rows = []
    for entry in entries:
        if entry.change == "added":
            rows.append([entry.name, "added", what, "—", show(entry.kind)])
        elif entry.change == "removed":
            rows.append([entry.name, "removed", what, show(entry.kind), "—"])
        else:
            rows += [
                [entry.name, "changed", c.path, show(c.old), show(c.new)] for c in entry.fields
            ]
    return rows


def _metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    a = (metrics.get("a") or {}).get("metrics", {})
    b = (metrics.get("b") or {}).get("metrics", {})
    rows = []
    for key in sorted(a.keys() | b.keys()):
        old, new = a.get(key), b.get(key)
        delta = ""
        if isinstance(old, int | float) and isinstance(new, int | float) and old != new:
            delta = f"{new - old:+.4g}"
        rows.append([key, _num(old), _num(new), delta])
    return rows


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else show(value)


def _run_label(run: dict[str, Any] | None) -> str:
    if run is None:
        return "no run"
    return f"run {run['run'][:8]}" + (" (dirty)" if run.get("dirty") else "")


def _sections(
    report: Report, code: Callable[[str], str] = str, word: Callable[[str], str] = str.upper
) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of each table with something in it, in reading order. In
    headers, ``code`` marks the side labels and ``word`` styles mlbuild's own words."""
    a, b = code(report.a.label), code(report.b.label)

    def head(*names: str) -> list[str]:
        return [n if n in (a, b) else word(n) for n in names]

    out: list[tuple[str, list[str], list[list[str]]]] = []
    out.append(
        (
            "Steps",
            [*head("step", "change"), f"{word('at')} {b}", word("why")],
            [[s.name, s.change, _at_b(s), _why(s)] for s in report.steps],
        )
    )
    tables = (
        ("Step declarations", head("step", "field", a, b), _field_rows(report)),
        ("Params", head("param", a, b), _change_rows(report.params)),
        (
            "Data",
            head("dataset", a, b),
            [[d.name, show(d.old), show(d.new)] for d in report.data],
        ),
        ("Environment", head("setting", a, b), _change_rows(report.environment)),
        (
            "Packages",
            head("package", a, b, "change"),
            [[p.name, show(p.old), show(p.new), p.change] for p in report.packages],
        ),
        ("Model", head("setting", a, b), _change_rows(report.model)),
        ("Test gates", head("gate", "change", "field", a, b), _entry_rows(report.gates, "kind")),
        (
            "Searches",
            head("search", "change", "field", a, b),
            _entry_rows(report.searches, "step"),
        ),
        ("Package", head("setting", a, b), _change_rows(report.package)),
        ("Other sections", head("key", a, b), _change_rows(report.sections)),
    )
    out += [t for t in tables if t[2]]
    metrics = report.metrics
    if metrics and "error" not in metrics and (metrics.get("a") or metrics.get("b")):
        headers = [
            word("metric"),
            f"{a} ({_run_label(metrics.get('a'))})",
            f"{b} ({_run_label(metrics.get('b'))})",
            word("change"),
        ]
        out.append(("Metrics of the last runs", headers, _metric_rows(metrics)))
    return out


def _notes(report: Report) -> list[str]:
    notes = list(report.lock_errors) + list(report.notes)
    if report.metrics and "error" in report.metrics:
        notes.append(f"run store: {report.metrics['error']}")
    return notes


def _title(report: Report, code: Callable[[str], str] = str) -> str:
    def label(side: Any) -> str:
        if side.commit is None or side.label == side.commit[:12]:
            return code(side.label)
        on = "on " if side.kind == "worktree" else ""
        return f"{code(side.label)} ({on}{side.commit[:12]})"

    return f"mlbuild diff {label(report.a)} → {label(report.b)}"


# ---- text --------------------------------------------------------------------------------------


def render_text(report: Report) -> str:
    lines = [_title(report), summary(report)]
    for title, headers, rows in _sections(report):
        lines += ["", f"{title}:", _indent(table(rows, headers))]
    notes = _notes(report)
    if notes:
        lines += ["", "Notes:", *(f"  {n}" for n in notes)]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


# ---- Markdown ----------------------------------------------------------------------------------


def render_markdown(report: Report) -> str:
    """A merge-request comment: a heading, the summary in bold, then the tables. Everything that
    comes from the repository (names, values, commands, branch names) is in a code span, where
    neither Markdown, HTML nor GitLab references (``@user``, ``#1``) take effect."""
    lines = [f"#### {_title(report, md_code)}", "", f"**{summary(report, md_code)}**"]
    for title, headers, rows in _sections(report, md_code, str):
        lines += ["", f"**{title}**", "", _md_table(headers, rows)]
    notes = _notes(report)
    if notes:
        lines += ["", *(f"- {md_code(n)}" for n in notes)]
    return "\n".join(lines) + "\n"


# cells written by mlbuild, shown as words; any other cell is the repository's, in a code span
_WORDS = {
    "added",
    "removed",
    "changed",
    "unchanged",
    "upgraded",
    "downgraded",
    "runs",
    "from the cache",
    "pending",
    "—",
    "",
}


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str, literal: bool) -> str:
        return (text if literal else md_code(text)).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h, True) for h in headers) + " |"]
    out.append("|" + "---|" * len(headers))
    out += ["| " + " | ".join(cell(c, c in _WORDS) for c in row) + " |" for row in rows]
    return "\n".join(out)


def md_code(text: str) -> str:
    """``text`` on one line as a Markdown code span, however many backticks it holds."""
    text = " ".join(text.split())
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
