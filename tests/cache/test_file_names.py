"""File names are bytes on Linux: an output folder may hold names that are not UTF-8 (a Latin-1
export, a tool's scratch file), and the cache keeps them byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: names
steps:
  export:
    cmd: python export.py
    deps: [export.py]
    outs: [export]
  listing:
    cmd: ls export > listing.txt
    deps: [export]
    outs: [listing.txt]
"""
EXPORT = """\
import os
os.makedirs(b"export", exist_ok=True)
open(b"export/caf\\xe9.csv", "wb").write(b"latin-1 name\\n")
open(b"export/new\\nline", "wb").write(b"a newline in the name\\n")
open("export/ü.txt", "w", encoding="utf-8").write("utf-8 name\\n")
"""
NAMES = sorted([b"caf\xe9.csv", b"new\nline", "ü.txt".encode()])


def test_an_output_folder_with_names_that_are_not_utf8_is_stored_and_restored_byte_for_byte(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.recipe(RECIPE).gen({"export.py": EXPORT})
    first = ws.run_json()
    assert statuses(first) == {"export": "ran", "listing": "ran"}
    for name in os.listdir(ws.root / "export"):
        os.unlink(os.path.join(os.fsencode(ws.root / "export"), os.fsencode(name)))
    assert statuses(ws.run_json()) == {"export": "restored", "listing": "cached"}
    assert sorted(os.listdir(os.fsencode(ws.root / "export"))) == NAMES
    assert (ws.root / os.fsdecode(b"export/caf\xe9.csv")).read_bytes() == b"latin-1 name\n"
    done = ws.cli("runs", "get", first["run_id"][:8], "export", "-o", str(tmp_path / "copy"))
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(os.fsencode(tmp_path / "copy"))) == NAMES
    # old enough to be remembered by stat in .mlbuild/state.db, which keeps text as UTF-8
    for name in NAMES:
        os.utime(os.path.join(os.fsencode(ws.root / "export"), name), (1e9, 1e9))
    assert statuses(ws.run_json()) == {"export": "cached", "listing": "cached"}
    assert statuses(ws.run_json()) == {"export": "cached", "listing": "cached"}
