"""A cache on a full disk: the step fails saying which file needed how many bytes, nothing
half-written is left, and a later run with space succeeds."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from mlbuild import racy
from tests.cache.damage import file_digest, leftovers
from tests.cache.test_atomic import small_disk
from tests.conftest import Workspace, statuses

RECIPE = """\
schema_version: 1
name: big
steps:
  big:
    cmd: python big.py
    deps: [big.py]
    outs: [out.bin]
"""
BIG = 'import os\nopen("out.bin", "wb").write(os.urandom(2 << 20))\n'


def test_a_full_cache_disk_fails_the_step_by_name_and_a_later_run_succeeds(
    ws: Workspace, tmp_path: Path
) -> None:
    ws.recipe(RECIPE).gen({"big.py": BIG})
    with small_disk(tmp_path / "disk", "1m") as disk:
        env = {"MLBUILD_CACHE_DIR": str(disk)}
        done = ws.cli("run", env=env)
        assert done.returncode == 1
        digest = file_digest(ws.root / "out.bin")
        target = disk / "objects" / digest[:2] / digest[2:]
        assert re.search(
            rf"^mlbuild: step 'big' failed: cannot store output out.bin: no space left on the "
            rf"device to write {target} "
            r"\(2,097,152 bytes needed, [\d,]+ bytes free\); free some space \(`mlbuild gc` "
            r"removes cached results nothing uses\) and try again$",
            done.stderr,
            re.MULTILINE,
        ), done.stderr
        assert "Traceback" not in done.stderr + done.stdout
        assert leftovers(disk) == []
        assert [p for p in (disk / "objects").rglob("*") if p.is_file()] == []
        assert not list((disk / "actions").glob("*/*.json"))  # nothing counts as done
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        assert statuses(ws.run_json(env=env)) == {"big": "ran"}
        stored = file_digest(ws.root / "out.bin")
        (ws.root / "out.bin").unlink()
        assert statuses(ws.run_json(env=env)) == {"big": "restored"}
        assert file_digest(ws.root / "out.bin") == stored


FILLS_THE_DISK = """\
schema_version: 1
name: full
steps:
  fill:
    cmd: python fill.py
    deps: [fill.py]
    outs: [small.txt]
"""
# writes its output, then takes every byte left on the device (a log, a checkpoint, another job)
FILL = """\
open("small.txt", "w").write("x")
with open("filler", "wb") as f:
    try:
        while True:
            f.write(b"0" * 4096)
            f.flush()
    except OSError:
        pass
"""


def test_a_workspace_whose_disk_fills_up_during_the_run_fails_the_step_not_mlbuild(
    tmp_path: Path,
) -> None:
    # The remembered file hashes (.mlbuild/state.db) are saved last; on a full disk that save
    # must not replace the run's own message with an "internal error" about SQLite.
    with small_disk(tmp_path / "disk", "2m") as disk:
        ws = Workspace(disk)
        ws.recipe(FILLS_THE_DISK).gen({"fill.py": FILL})
        # old enough to be remembered by stat (the state table trusts the ctime, which only
        # time moves past the racy window): the save at the end has a row to write
        time.sleep(racy.RACY_WINDOW_NS / 1e9 + 0.1)
        done = ws.cli("run")
        assert "internal error" not in done.stdout + done.stderr, done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert done.returncode == 1, done.stderr
        # the step fails (its log could not be written), and the run says so
        assert done.stderr.startswith("mlbuild: step 'fill' failed: "), done.stderr
        assert "no space left on" in done.stderr.lower()
        assert "database or disk is full" not in done.stderr
        (disk / "filler").unlink()
        ws.gen({"fill.py": 'open("small.txt", "w").write("x")\n'})
        assert statuses(ws.run_json()) == {"fill": "ran"}


CHATTY = """\
schema_version: 1
name: chatty
steps:
  chatty:
    cmd: python chatty.py
    deps: [chatty.py]
    outs: [small.txt]
"""
# a step whose output alone is more than the device holds
CHATTY_PY = """\
open("small.txt", "w").write("x")
for i in range(40_000):
    print("progress line", i, "x" * 80)
"""


def test_a_step_log_that_fills_the_disk_names_the_log_and_the_free_space(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        ws = Workspace(disk)
        ws.recipe(CHATTY).gen({"chatty.py": CHATTY_PY})
        done = ws.cli("run", "--quiet")
        assert "Traceback" not in done.stdout + done.stderr
        assert done.returncode == 1, done.stderr
        assert re.match(
            rf"mlbuild: step 'chatty' failed: no space left on the device to write "
            rf"{re.escape(str(disk))}/\.mlbuild/\S+\.log \([\d,]+ bytes free\); free some space",
            done.stderr,
        ), done.stderr
