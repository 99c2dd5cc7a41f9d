"""``mlbuild.cli.text.table``: plain left-aligned columns, no trailing spaces on any line."""

from __future__ import annotations

from mlbuild.cli.text import table


def test_columns_align_and_no_line_ends_in_spaces() -> None:
    rows = [["a", "run", "deps changed: " + ", ".join(f"c{i}/9.txt" for i in range(5))]]
    rows += [["bb", "cached", ""], ["c", "", "one  "]]
    assert table(rows, ["step", "action", "why"]).splitlines() == [
        "step  action  why",
        "a     run     deps changed: c0/9.txt, c1/9.txt, c2/9.txt, c3/9.txt, c4/9.txt",
        "bb    cached",
        "c             one",
    ]
