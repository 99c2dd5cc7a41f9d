"""A damaged state table (``.mlbuild/state.db``: not a database, or tables of another shape) is
read as empty and made anew by the next save: every file is hashed again, never an internal
error on every command. (A table another process holds is not damage: that still waits.)"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.cache import Cache
from tests.conftest import Workspace, write_tree


def garbage(db: Path) -> None:
    db.write_bytes(b"not a database, and long enough to look like one" * 100)


def files_of_another_shape(db: Path) -> None:
    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE files (a, b)")
        conn.execute("INSERT INTO files VALUES (1, 2)")


def values_of_another_type(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT OR REPLACE INTO files VALUES ('a.txt', 'x', 'y', 'z', 'w')")
        conn.execute("INSERT OR REPLACE INTO dirs VALUES ('data', 'x', 'y', 'not a size')")


def directory_rows_of_another_shape(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE dir_files")
        conn.execute("CREATE TABLE dir_files (q)")
        conn.execute("DROP TABLE dirs")
        conn.execute("CREATE TABLE dirs (q)")


@pytest.mark.parametrize(
    "damage",
    [garbage, files_of_another_shape, values_of_another_type, directory_rows_of_another_shape],
)
def test_a_damaged_state_table_is_read_as_empty_and_made_anew(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    write_tree(tmp_path, {"a.txt": "aaaa", "data": {"x.txt": "x", "y.txt": "y"}})
    first = Cache.open(tmp_path, tmp_path / ".mlbuild")
    truth = [first.hasher.digest("a.txt"), first.hasher.digest("data")]
    first.state.save()
    damage(first.state.db_path)
    again = Cache.open(tmp_path, tmp_path / ".mlbuild")
    assert [again.hasher.digest("a.txt"), again.hasher.digest("data")] == truth
    again.state.save()
    with sqlite3.connect(again.state.db_path) as conn:  # a sound table again
        assert conn.execute("SELECT count(*) FROM files").fetchone() is not None


def test_a_run_with_a_damaged_state_table_hashes_again(ws: Workspace) -> None:
    ws.recipe(
        "schema_version: 1\nname: demo\nsteps:\n"
        "  s: {cmd: \"python -c \\\"open('o.txt', 'w').write('o')\\\"\", outs: [o.txt]}\n"
    )
    assert ws.cli("run").returncode == 0
    garbage(ws.root / ".mlbuild" / "state.db")
    done = ws.cli("run")
    assert (done.returncode, done.stderr) == (0, "")
    assert "1 cached" in done.stdout
